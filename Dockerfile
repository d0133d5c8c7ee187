# The runtime image of `deploy.image`: every pod `mlops generate` renders (RayJob head,
# workers and submitter, RayService nodes running the RAG service, the fetch_model
# init container, the drift CronJob, the PyTorchJob, the batch RayJob and CronJob) runs
# this image with `python -m framework.runtime.<train|fetch_model|monitor|rag.index|
# batch|batch.launch>`, a Ray Serve import path (`framework.runtime.serving.ray_host:app`,
# `framework.runtime.rag.ray_host:app`) or `mlops`. tests/targets/test_dockerfile.py
# checks that every module the generated manifests call is in the wheel this file
# installs.
#
# Build (BuildKit; one of the two targets; the last one, cpu, is the default):
#
#   docker build --target cpu  -t ghcr.io/example/mlops-runtime:$(git rev-parse --short=12 HEAD)-cpu \
#     --build-arg REVISION=$(git rev-parse HEAD) \
#     --build-arg SOURCE_URL=https://github.com/<owner>/<repo> .
#   docker build --target cuda -t ghcr.io/example/mlops-runtime:$(git rev-parse --short=12 HEAD)-cuda \
#     --build-arg REVISION=$(git rev-parse HEAD) \
#     --build-arg SOURCE_URL=https://github.com/<owner>/<repo> .
#
#   cpu:  torch from the PyTorch CPU wheel index (no CUDA libraries, a few GB smaller);
#         for every CPU recipe (the RAG service, fetch_model, monitor, CPU training).
#   cuda: torch from PyPI (torch 2.13.0 there is built for CUDA 13.0; its CUDA runtime
#         comes as nvidia-*-cu13 wheels, the node supplies only the driver, >= 580); for
#         GPU recipes (training=ray_gpu, training=pytorchjob_gpu, serving.instances.kind=gpu).
#         Without the `llm` extra: the generated LLM servers run vLLM's (or TGI's) own
#         image, and vLLM 0.33 pins torch 2.14, which this project's torch pin excludes.
#
# A static, committed Dockerfile rather than one `mlops generate` renders: the image
# depends on the project (pyproject.toml dependencies, the framework package, the
# project files under /app), not on any one recipe or environment. One image serves
# every recipe and env (deploy.image names it), so rendering it per recipe would write
# identical copies; a static file is what `docker build`, CI and image scanners expect,
# and it is checked here (tests/targets/test_dockerfile.py: parser, checkov, wheel).
#
# Pinned base: python 3.11.14 on Debian bookworm, by tag and by the digest of its
# multi-architecture index. Refresh both together:
#   docker buildx imagetools inspect python:3.11.14-slim-bookworm --format '{{json .Manifest.Digest}}'
#
# Runs as uid/gid 1000 (the generated pods' runAsUser/runAsGroup/fsGroup) on a
# read-only root filesystem: /tmp is the pods' emptyDir, HOME and every cache point
# below it, and the project files under /app are owned by root (read-only to the user).

# --- builder: the project's wheel ------------------------------------------------------
FROM python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
# The build backend, pinned ([build-system].requires: setuptools>=69); the wheel is
# built without build isolation so nothing else is fetched.
RUN python -m pip install --no-cache-dir setuptools==84.2.1

COPY pyproject.toml README.md ./
COPY framework ./framework
# Pure Python: no compiler. framework/templates/* is package data (pyproject.toml).
RUN python -m pip wheel --no-cache-dir --no-deps --no-build-isolation --wheel-dir /dist .

# --- runtime-base: what both variants share ---------------------------------------------
FROM python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d AS runtime-base

ARG VERSION=0.1.0
ARG REVISION=""
ARG SOURCE_URL=""

LABEL org.opencontainers.image.title="mlops-runtime" \
      org.opencontainers.image.description="Runtime of the mlops-recipes framework: training, serving, RAG, monitoring" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11.14-slim-bookworm" \
      org.opencontainers.image.base.digest="sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d"

# Writable state only under /tmp (the pods' emptyDir; readOnlyRootFilesystem):
# HOME (Ray's ~/ray_results, ~/.triton), XDG and Hugging Face caches, matplotlib's
# config, and the framework's state dir (train/fetch_model/monitor/serve default to
# $MLOPS_STATE_DIR; the RAG jobs pass --state-dir /app/.mlops, an emptyDir there).
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/tmp \
    XDG_CACHE_HOME=/tmp/.cache \
    XDG_CONFIG_HOME=/tmp/.config \
    HF_HOME=/tmp/.cache/huggingface \
    MPLCONFIGDIR=/tmp/.config/matplotlib \
    MLOPS_STATE_DIR=/tmp/mlops \
    RAY_USAGE_STATS_ENABLED=0

# wget: KubeRay's default readiness/liveness probes of Ray head and worker pods run
# `bash -c "wget -T 2 -q -O- http://localhost:<port>/api/..._healthz | grep success"`.
# libgomp1: LightGBM's library links OpenMP (model.architecture lightgbm), which the
# slim image lacks.
# The user: uid/gid 1000 with a passwd entry, so getpass.getuser()/pwd lookups (torch,
# Ray) work; no home of its own (HOME=/tmp).
RUN apt-get update \
    && apt-get install -y --no-install-recommends wget libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 1000 mlops \
    && useradd --uid 1000 --gid 1000 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin mlops

# The project root the manifests assume (`--root /app`; data paths such as
# data/churn.csv and rag.documents README.md, docs/**/*.md resolve against the working
# directory). Recipes come from the recipe ConfigMap at run time; recipes/ is here for
# `mlops` inside the image.
WORKDIR /app
COPY pyproject.toml README.md ./
COPY recipes ./recipes
COPY data ./data
COPY docs ./docs
COPY eval ./eval
COPY feature_repo ./feature_repo

# Kubernetes ignores Docker's HEALTHCHECK: every generated pod carries its own probes
# (the servers' startup/readiness/liveness probes, KubeRay's probes for Ray pods), and
# the same image also runs batch jobs (RayJob, CronJob, init containers) where a
# periodic health command would be meaningless. So none, explicitly.
HEALTHCHECK NONE
CMD ["mlops", "--help"]

# Both variants install the `wandb` extra: one image serves every recipe, and any of them may
# mirror its runs to Weights & Biases (tracking.backends: [mlflow, wandb]).

# --- cuda: torch from PyPI (built with CUDA) ---------------------------------------------
FROM runtime-base AS cuda
COPY --from=builder /dist/mlops_recipes-*.whl /tmp/wheels/
RUN set -eu \
    && python -m pip install --no-cache-dir "$(ls /tmp/wheels/mlops_recipes-*.whl)[feast,wandb]" \
    && rm -rf /tmp/wheels
USER 1000:1000

# --- cpu (default): torch from the PyTorch CPU index, then the project ------------------
FROM runtime-base AS cpu
ARG TORCH_VERSION=2.13.0
COPY --from=builder /dist/mlops_recipes-*.whl /tmp/wheels/
# torch first from the CPU index (2.13.0+cpu satisfies the wheel's torch==2.13.0, so
# the second install keeps it); everything else from PyPI. No `llm` extra (vLLM needs CUDA);
# the `feast` extra: training joins and serving looks up features of data.source.feast.
RUN set -eu \
    && python -m pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu "torch==${TORCH_VERSION}" \
    && python -m pip install --no-cache-dir "$(ls /tmp/wheels/mlops_recipes-*.whl)[feast,wandb]" \
    && rm -rf /tmp/wheels
USER 1000:1000
