"""The API of `mlops serve`: the recipe's model (or RAG service) on the embedded host in
the foreground until Ctrl-C, or its Ray Serve application deployed to a Ray cluster.
A tabular recipe serves what `apply` left: the registry's champion (and the candidate
while a rollout runs, routed as the rollout record says), else the local model
repository. A RAG recipe serves its generation server and RAG service. Returns a
`ServeResult` once serving stops (or, on a cluster, once the application runs); nothing
here prints: `on_ready(url, versions, routing)` is told when it listens.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from framework.api.generate import generate
from framework.api.pipelines import kind_of
from framework.api.recipes import as_project, load_recipe
from framework.api.results import ServeResult
from framework.errors import MlopsError, Problem
from framework.project import Project


def serve(
    recipe: str,
    env: str | None = None,
    host: str = "127.0.0.1",
    port: int | None = None,
    project: Project | Path | None = None,
    on_ready: Any = None,
    address: str | None = None,
    head_shares_disk: bool = False,
) -> ServeResult:
    """Serve the recipe's model from the local model repository (what `apply` filled;
    for a Ray Serve recipe the registry's champion and candidate) with the serving app
    on the embedded host, in the foreground until Ctrl-C. `port` defaults to
    serving.port; `on_ready(url, versions, routing)` is called once it listens.
    `address`: deploy the recipe's Ray Serve application to that Ray cluster instead
    (the same versions and routing) and return once it runs."""
    proj = as_project(project)
    r = load_recipe(recipe, env, (), proj).recipe
    port = port if port is not None else r.serving.port
    if address is not None:
        return _serve_on_cluster(recipe, env, r, proj, address, head_shares_disk, on_ready)
    kind = kind_of(r)
    if kind == "rag":
        return _serve_rag(r, proj, host, port, on_ready)
    if kind != "tabular":
        message = f"mlops serve runs tabular models and RAG recipes; {r.name} is served by {r.serving.backend} (apply --target kubernetes)"
        raise MlopsError([Problem(None, "model.kind", message)])
    from framework.runtime.serving.live import live_plan, live_router
    from framework.runtime.serving.host import build_app, serve_forever

    plan = live_plan(r, proj.state_dir)
    if plan.champion is not None:  # exactly the champion (and the candidate in a rollout)
        from framework.runtime.rollout.local import rollout_repository

        repository = rollout_repository(r, proj.state_dir, plan.model, plan.versions, purpose="serve")
        app = build_app(r, repository, proj.state_dir, router=live_router(r, plan), versions=plan.versions,
                        root=proj.root)
    else:  # nothing promoted yet: what apply left, else the registry's candidate
        app = build_app(r, None, proj.state_dir, root=proj.root)
    versions = app.repository.versions()
    urls: list[str] = []

    def ready(url: str) -> None:
        urls.append(url)
        if on_ready is not None:
            on_ready(url, versions, plan.describe())

    serve_forever(app, host, port, ready)
    return ServeResult(r.name, r.environment, urls[0] if urls else "", versions, plan.describe())


def _serve_rag(r: Any, proj: Project, host: str, port: int, on_ready: Any) -> ServeResult:
    from framework.runtime.rag.local import serve_forever

    urls: list[str] = []

    def ready(url: str, how: str) -> None:
        urls.append(url)
        if on_ready is not None:
            on_ready(url, {}, how)

    serve_forever(r, proj.root, proj.state_dir, host, port, on_ready=ready)
    return ServeResult(r.name, r.environment, urls[0] if urls else "", {}, "RAG: POST /query")


def _serve_on_cluster(recipe: str, env: str | None, r: Any, proj: Project, address: str, head_shares_disk: bool,
                      on_ready: Any) -> ServeResult:
    if r.serving.backend != "ray_serve":
        message = (f"--address deploys the recipe's Ray Serve application; {r.name} is served by {r.serving.backend} "
                   "(serving.backend ray_serve, or apply --target kubernetes)")
        raise MlopsError([Problem(None, "serving.backend", message)])
    from framework.runtime.rollout.cluster import serve_on_cluster

    generate([recipe], env=env, project=proj)
    url, plan = serve_on_cluster(r, proj.root, proj.generated_dir / r.name / r.environment, proj.state_dir, address,
                                 head_shares_disk=head_shares_disk)
    versions = {plan.model: plan.versions}
    if on_ready is not None:
        on_ready(f"http://{url}", versions, plan.describe())
    return ServeResult(r.name, r.environment, f"http://{url}", versions, plan.describe(), cluster=True)
