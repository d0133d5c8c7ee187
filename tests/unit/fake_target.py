"""A minimal target for testing generate's bookkeeping apart from the real targets."""

from framework.targets import Artifact
from framework.targets.common import header, yaml_text


def render(recipe):
    files = [
        Artifact("k8s/config.yaml", yaml_text(recipe, {"epochs": getattr(recipe.training, "epochs", 0),
                                                        "namespace": recipe.deploy.namespace})),
        Artifact("triton/model/config.pbtxt", header(recipe) + f'name: "{recipe.name}"\n'),
        Artifact(f"mlops-{recipe.name}.yml", yaml_text(recipe, {"name": recipe.name}, per_env=False), scope="workflows"),
    ]
    return files
