"""The recipe language: composition (Hydra), models (pydantic), cross-field checks.

Import-light: nothing here imports torch, ray, mlflow, evidently or onnx.
"""
