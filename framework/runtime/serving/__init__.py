"""The serving app (KServe v2 over ASGI) in small parts, serving with the typed model
config of framework/contracts/triton.py: model_config (writes config.pbtxt into a model
repository), repository (model versions and their runners), batcher (dynamic batching), protocol
(requests and responses), router (the rollout hook), metrics, request_log, app (the
ASGI application) and the hosts' helpers (registry_source, ray_host).
framework.runtime.serving.host builds the app and runs it embedded or on Ray Serve."""
