"""The apply pipelines of an LLM recipe with a `rag` section: here (`local`) and on a Ray
cluster (`ray`), each declared once as stages of steps (see steps.py).
Here: generate, then framework.runtime.rag.local.apply_local indexes the documents,
evaluates retrieval against evaluation.gates, starts the generation server (vLLM with a
GPU, else the CPU fallback) and the RAG service on the embedded host and asks it the
first labelled question. On a cluster: generate, then the index job and the RAG service
(which generates through rag.llm_endpoint) go there. Neither registers a model version.
Imported only when a RAG recipe is applied.
"""

from __future__ import annotations

from framework.api.steps import ApplyRun, Pipeline, Stage, Step, generate_files, needs_address

GENERATE = Step("generate", lambda run: f"generate: write generated/{run.recipe.name}/{run.recipe.environment}/")
INDEX = Step("index", lambda run: "index: load rag.documents, split, embed the changed ones with "
             f"{run.recipe.rag.embedding.model}, store in {run.recipe.rag.vector_store.path}")
EVALUATE = Step("evaluate", lambda run: "evaluate: retrieval recall@k and MRR on "
                f"{getattr(getattr(run.recipe.evaluation, 'retrieval', None), 'questions', 'the labelled set')}; check "
                "evaluation.gates")
GENERATION = Step("generation", lambda run: f"generation: {run.recipe.serving.backend} (vLLM or SGLang with a GPU, else "
                  "model.cpu_fallback under transformers), OpenAI routes")
SERVE = Step("serve", lambda run: "serve: the RAG service (POST /query) on the embedded host, asked the first "
             "labelled question")
CLUSTER_INDEX = Step("index", lambda run: f"index: the RAG index job ({run.recipe.rag.vector_store.path}) on the Ray "
                     f"cluster at {run.address}")
CLUSTER_SERVE = Step("serve", lambda run: "serve: the RAG service (ray/rag_serve_config.yaml) on the cluster, "
                     f"generating through {run.recipe.rag.llm_endpoint}")


def _apply_here(run: ApplyRun) -> None:
    from framework.runtime.rag.local import apply_local, summary

    proj = run.project
    run.outcome = apply_local(run.recipe, proj.root, proj.state_dir, run.console)
    run.report = summary(run.recipe, run.outcome)


def _check_cluster(run: ApplyRun) -> None:
    """A cluster, a disk its nodes share and a generation endpoint, refused up front."""
    needs_address(run)
    from framework.runtime.rag.cluster import check_cluster_rag

    check_cluster_rag(run.recipe, run.address, run.head_shares_disk)


def _apply_on_cluster(run: ApplyRun) -> None:
    from framework.runtime.rag.cluster import apply_rag_on_cluster

    proj, r = run.project, run.recipe
    run.serve_hint = apply_rag_on_cluster(r, proj.root, run.env_dir, proj.state_dir, run.address,
                                          head_shares_disk=run.head_shares_disk, console=run.console)
    run.job_status = "SUCCEEDED"  # the index job's (a failed one raised)
    run.report = f"{r.name} ({r.environment}): Ray job {run.job_status}"


PIPELINES = {
    "local": Pipeline((Stage(generate_files, (GENERATE,)), Stage(_apply_here, (INDEX, EVALUATE, GENERATION, SERVE))),
                      registers=False),
    "ray": Pipeline((Stage(generate_files, (GENERATE,)), Stage(_apply_on_cluster, (CLUSTER_INDEX, CLUSTER_SERVE))),
                    check=_check_cluster, registers=False),
}
