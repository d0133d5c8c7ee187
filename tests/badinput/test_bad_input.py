"""Broken recipes and overrides: each exits 1 with one exact `file:line: key: message`
line, no traceback, and nothing written."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import run_cli, tree_snapshot

OVERRIDE = "<override>"
Edit = Callable[[Path], None]


def replace(file: str, old: str, new: str) -> Edit:
    def edit(root: Path) -> None:
        path = root / file
        text = path.read_text()
        assert old in text, f"{old!r} not in {file}"
        path.write_text(text.replace(old, new, 1))
    return edit


def append(file: str, text: str) -> Edit:
    def edit(root: Path) -> None:
        path = root / file
        path.write_text(path.read_text() + text)
    return edit


def write(file: str, text: str) -> Edit:
    def edit(root: Path) -> None:
        (root / file).write_text(text)
    return edit


@dataclass
class Case:
    id: str
    args: list[str]
    where: str | tuple[str, str]  # "<override>", "file", or (file, text on the line)
    key: str
    message: str  # regex searched in the message part
    edits: list[Edit] = field(default_factory=list)


T = "recipes/serving/triton.yaml"
C = "recipes/churn.yaml"
D = "recipes/data/churn_csv.yaml"
R = "recipes/training/ray_cpu.yaml"
K = "recipes/deploy/k8s.yaml"
B = "recipes/batch/churn_prod.yaml"
S = "recipes/serving/sglang.yaml"
WANDB = "+tracking.backends=[mlflow,wandb]"

CASES = [
    # --- YAML and file shape -------------------------------------------------------------
    Case("yaml-syntax-recipe", ["churn"], (C, "name: [oops"), "", r"^YAML syntax error: .*flow sequence",
         [append(C, "extra: 1\nname: [oops\n")]),
    Case("yaml-syntax-group-file", ["churn"], (T, "bad: [1, 2"), "", r"^YAML syntax error: .*flow sequence",
         [append(T, "bad: [1, 2\nwarmup: true\n")]),
    Case("yaml-duplicate-key", ["churn"], (C, "owner: twice"), "", r"^YAML syntax error: .*duplicate key owner",
         [append(C, "owner: twice\n")]),
    Case("empty-recipe-file", ["churn"], (C, None), "", r"^recipe is empty", [write(C, "")]),
    Case("recipe-is-a-list", ["churn"], (C, "- data"), "", r"^a recipe must be a mapping of keys, found a list",
         [write(C, "- data\n- model\n")]),
    Case("group-file-is-a-list", ["churn"], (T, "- a"), "serving", r"^a recipe file must be a mapping of keys",
         [write(T, "- a\n- b\n")]),
    # --- unknown keys ---------------------------------------------------------------------
    Case("unknown-top-level-key", ["churn"], (C, "nmae:"), "nmae", r"^unknown key 'nmae' \(did you mean 'name'\?\)",
         [append(C, "nmae: churn2\n")]),
    Case("unknown-nested-key", ["churn"], (R, "epochz"), "training.epochz",
         r"^unknown key 'epochz' \(did you mean 'training.epochs'\?\); keys here: .*epochs",
         [append(R, "epochz: 3\n")]),
    Case("unknown-key-in-variant", ["churn"], (T, "tensor_parallel_size"), "serving.tensor_parallel_size",
         r"^unknown key 'tensor_parallel_size'", [append(T, "tensor_parallel_size: 2\n")]),
    Case("unknown-key-added-by-override", ["churn", "+training.foo=1"], OVERRIDE, "training.foo", r"^unknown key 'foo'"),
    Case("override-missing-key-without-plus", ["churn", "training.epochz=3"], OVERRIDE, "training.epochz",
         r"^no such key to override \(did you mean 'training.epochs'\?\); to add a new key write '\+training.epochz=...'"),
    # --- types and ranges ------------------------------------------------------------------------
    Case("wrong-type-in-file", ["churn"], (R, "epochs: ten"), "training.epochs", r"^must be an integer, got 'ten' \(a string\)",
         [replace(R, "epochs: 10", "epochs: ten")]),
    Case("wrong-type-override", ["churn", "training.epochs=abc"], OVERRIDE, "training.epochs", r"^must be an integer, got 'abc'"),
    Case("bool-is-not-an-integer", ["churn", "training.workers=true"], OVERRIDE, "training.workers", r"^must be an integer, got true"),
    Case("group-given-a-value", ["churn", "monitoring=5"], OVERRIDE, "monitoring",
         r"^'monitoring' is a group: choose one of its options \(llm, standard\), not a value"),
    Case("section-is-a-scalar", ["churn"], (C, "tracking: 5"), "tracking", r"^must be a mapping of keys, got 5",
         [append(C, "tracking: 5\n")]),
    Case("out-of-range-low", ["churn", "training.optimizer.lr=0"], OVERRIDE, "training.optimizer.lr", r"^must be greater than 0, got 0"),
    Case("out-of-range-high", ["churn", "data.split.validation=1.5"], OVERRIDE, "data.split.validation", r"^must be less than 1, got 1.5"),
    Case("negative-count", ["churn", "serving.instances.count=0"], OVERRIDE, "serving.instances.count", r"^must be greater than or equal to 1"),
    Case("literal-not-allowed", ["churn", "data.source.format=xlsx"], OVERRIDE, "data.source.format",
         r"^'xlsx' is not allowed; one of: 'csv' or 'parquet'"),
    Case("variant-misspelled", ["churn", "serving.backend=trito"], OVERRIDE, "serving.backend",
         r"^unknown value 'trito' \(did you mean 'triton'\?\); one of: triton, ray_serve, vllm, sglang, tgi, ray_serve_llm"),
    # --- required fields -------------------------------------------------------------------
    Case("missing-required-field", ["churn"], (D, "source:"), "data.target", r"^required key missing",
         [replace(D, "target: churned\n", "")]),
    Case("missing-required-by-delete", ["churn", "~deploy.image"], OVERRIDE, "deploy.image", r"^required key missing"),
    Case("missing-sections", ["bare"], ("recipes/bare.yaml", None), "model", r"^required key missing",
         [write("recipes/bare.yaml", "name: bare\n")]),
    # --- groups and recipes ----------------------------------------------------------------
    Case("misspelled-group-option-override", ["churn", "serving=trition"], OVERRIDE, "serving",
         r"^unknown option 'trition' \(did you mean 'triton'\?\); options: ray_serve, ray_serve_llm, sglang, tgi, triton, vllm"),
    Case("misspelled-group-option-in-defaults", ["churn"], (C, "serving: trition"), "defaults.serving",
         r"^unknown option 'trition' \(did you mean 'triton'\?\)", [replace(C, "serving: triton", "serving: trition")]),
    Case("defaults-names-missing-file", ["churn"], (C, "monitoring: gone"), "defaults.monitoring",
         r"^unknown option 'gone'; options: llm, standard", [replace(C, "monitoring: standard", "monitoring: gone")]),
    Case("defaults-names-unknown-group", ["churn"], (C, "servng: triton"), "defaults.servng",
         r"^unknown group 'servng' \(did you mean 'serving'\?\)", [replace(C, "serving: triton", "servng: triton")]),
    Case("unknown-env", ["churn", "--env", "qa"], OVERRIDE, "env", r"^unknown option 'qa'; options: dev, prod, staging"),
    Case("unknown-recipe", ["chrun"], "recipes", "", r"^unknown recipe 'chrun' \(did you mean 'churn'\?\)"),
    Case("recipe-path-not-found", ["recipes/nope.yaml"], "recipes/nope.yaml", "", r"^recipe file not found"),
    Case("override-is-a-sweep", ["churn", "training.epochs=1,2"], OVERRIDE, "training.epochs=1,2",
         r"^several values make a sweep"),
    Case("list-too-short", ["churn", "data.features=[]"], OVERRIDE, "data.features", r"^must have at least 1 item, got 0"),
    Case("group-list-with-unknown-option", ["churn", "training=[ray_cpu,nope]"], OVERRIDE, "training",
         r"^unknown option 'nope'; options: pytorchjob_gpu, ray_cpu, ray_cpu_hpo, ray_gpu"),
    Case("category-listed-twice", ["churn", "data.expectations.columns.contract.in_set=[a,b,a]"], OVERRIDE,
         "data.expectations.columns.contract.in_set", r"^lists a more than once"),
    Case("two-version-policies", ["churn", "+serving.version_policy.specific=[1,2]"], (T, "version_policy:"),
         "serving.version_policy", r"^set latest or specific, not both"),
    Case("batching-without-batches", ["churn", "serving.max_batch_size=0"], (T, "dynamic_batching:"), "serving.dynamic_batching",
         r"serving.dynamic_batching needs serving.max_batch_size > 0"),
    Case("override-does-not-parse", ["churn", "training.epochs=[1"], OVERRIDE, "training.epochs=[1", r"^cannot parse override"),
    # --- names ---------------------------------------------------------------------------------------
    Case("name-uppercase", ["churn", "name=Churn"], OVERRIDE, "name", r"^'Churn' is not a valid name"),
    Case("name-64-chars", ["churn", "name=" + "a" * 64], OVERRIDE, "name", r"is 64 characters; at most 30"),
    Case("name-path-traversal", ["churn", "name=../x"], OVERRIDE, "name", r"^'../x' is not a valid name"),
    Case("name-empty", ["churn", "name=''"], OVERRIDE, "name", r"^must not be empty"),
    Case("name-in-file-starts-with-digit", ["churn"], (C, "name: 1churn"), "name", r"^'1churn' is not a valid name",
         [replace(C, "name: churn", "name: 1churn")]),
    Case("namespace-invalid", ["churn", "deploy.namespace=ML_Prod"], OVERRIDE, "deploy.namespace", r"^'ML_Prod' is not a valid name"),
    # --- constrained values ----------------------------------------------------------------
    Case("cron-not-five-fields", ["churn", "monitoring.drift.schedule=hourly"], OVERRIDE, "monitoring.drift.schedule",
         r"^'hourly' is not a cron schedule: use 5 fields"),
    Case("cron-value-out-of-range", ["churn", "monitoring.drift.schedule='61 * * * *'"], OVERRIDE, "monitoring.drift.schedule",
         r"^'61 \* \* \* \*' is not a valid cron schedule"),
    Case("quantity-with-words", ["churn", "serving.resources.cpu='2 cores'"], OVERRIDE, "serving.resources.cpu",
         r"^'2 cores' is not a Kubernetes quantity"),
    Case("quantity-in-file", ["churn"], (R, "memory_per_worker: 2GB"), "training.memory_per_worker", r"^'2GB' is not a Kubernetes quantity",
         [replace(R, "memory_per_worker: 2Gi", "memory_per_worker: 2GB")]),
    Case("duration-with-words", ["churn", "rollout.interval='5 minutes'"], OVERRIDE, "rollout.interval", r"^'5 minutes' is not a duration"),
    Case("image-latest", ["churn", "deploy.image=ghcr.io/x/y:latest"], OVERRIDE, "deploy.image", r"uses ':latest'"),
    Case("image-without-tag", ["churn"], (K, "image: ghcr.io/example/mlops-runtime\n"), "deploy.image", r"has no tag",
         [replace(K, "mlops-runtime:0.1.0", "mlops-runtime")]),
    Case("secret-as-literal", ["churn"], (K, "MLFLOW_TRACKING_TOKEN: hunter2"), "deploy.secrets.MLFLOW_TRACKING_TOKEN",
         r"^a secret is a reference \{name, key\} to a Kubernetes Secret, never a literal value",
         [append(K, "  API_KEY: {name: api, key: k}\n"), replace(K, "MLFLOW_TRACKING_TOKEN:\n    name: mlflow-credentials\n    key: token", "MLFLOW_TRACKING_TOKEN: hunter2")]),
    Case("secret-with-value-key", ["churn"], (K, "API_KEY"), "deploy.secrets.API_KEY", r"^a secret must not carry its value",
         [append(K, "  API_KEY: {name: api, key: k, value: hunter2}\n")]),
    # --- interpolation ------------------------------------------------------------------------
    Case("env-var-missing-without-default", ["churn"], (C, "MLOPS_TEST_UNSET_VAR"), "owner",
         r"environment variable MLOPS_TEST_UNSET_VAR is not set and has no default",
         [replace(C, "owner: ml-platform@example.com", "owner: ${oc.env:MLOPS_TEST_UNSET_VAR}")]),
    Case("interpolation-cycle", ["churn"], (C, "description: ${owner}"), "description", r"interpolation cycle",
         [replace(C, "owner: ml-platform@example.com", "owner: ${description}"),
          replace(C, "description: Customer churn classifier (tabular MLP) served by Triton, rolled out by canary.", "description: ${owner}")]),
    Case("interpolation-to-missing-key", ["churn", "owner=${nope.key}"], OVERRIDE, "owner", r"refers to 'nope.key', which is not in the recipe"),
    # --- cross-field rules -------------------------------------------------------------------------
    Case("max-batch-below-preferred", ["churn", "serving.max_batch_size=4"], OVERRIDE, "serving.max_batch_size",
         r"serving.max_batch_size \(4\) must be >= the largest of serving.dynamic_batching.preferred_batch_sizes \(32\)"),
    Case("canary-steps-fall", ["churn", "rollout.steps=[10,5,100]"], OVERRIDE, "rollout.steps", r"must rise strictly: 5 follows 10"),
    Case("canary-steps-stop-short", ["churn", "rollout.steps=[10,50]"], OVERRIDE, "rollout.steps", r"must end at 100"),
    Case("gpu-instances-without-gpus", ["churn", "serving.instances.kind=gpu"], OVERRIDE, "serving.instances.kind",
         r"serving.instances.kind gpu needs serving.resources.gpu >= 1"),
    Case("hpo-metric-not-evaluated", ["churn", "+training.hpo={metric: f2, search_space: {training.optimizer.lr: {type: float, low: 0.0001, high: 0.1, log: true}}}"],
         OVERRIDE, "training.hpo.metric", r"training.hpo.metric 'f2' is not computed: use loss or one of evaluation.metrics"),
    Case("hpo-key-not-in-recipe", ["churn", "+training.hpo={metric: f1, search_space: {training.optimizer.lrr: {type: float, low: 0.0001, high: 0.1}}}"],
         OVERRIDE, "training.hpo.search_space.training.optimizer.lrr", r"is not a key of the recipe"),
    Case("hpo-key-not-tunable", ["churn", "+training.hpo={metric: f1, search_space: {data.split.seed: {type: int, low: 0, high: 9}}}"],
         OVERRIDE, "training.hpo.search_space.data.split.seed", r"only model.\* and training.\* keys can be tuned"),
    Case("fairness-attribute-not-a-column", ["churn", "evaluation.gates.fairness.attribute=genderr"], OVERRIDE,
         "evaluation.gates.fairness.attribute", r"'genderr' is not a data column.*\(did you mean 'gender'\?\)"),
    Case("target-among-features", ["churn"], (D, "target: tenure_months"), "data.target",
         r"data.target 'tenure_months' must not be among data.features",
         [replace(D, "target: churned", "target: tenure_months"), replace(D, "    churned: {not_null: true, in_set: [0, 1]}\n", "")]),
    Case("quantization-not-for-backend", ["support_assistant", "model.quantization=gguf", "serving=tgi"], OVERRIDE,
         "model.quantization", r"^model.quantization gguf is not supported by serving.backend tgi; supported: awq, "
         r"bitsandbytes, bitsandbytes-fp4, bitsandbytes-nf4, eetq, exl2, fp8, gptq, marlin, none$"),
    Case("quantization-only-tgi-knows", ["support_assistant", "model.quantization=eetq"], OVERRIDE,
         "model.quantization", r"^model.quantization eetq is not supported by serving.backend vllm; supported: awq, "
         r"bitsandbytes, fp8, gguf, gptq, none$"),
    Case("quantization-needs-vllm-plugin", ["support_assistant", "model.quantization=bitsandbytes"], OVERRIDE,
         "model.quantization", r"^model.quantization bitsandbytes needs vLLM's vllm-bnb-plugin \(out of vLLM's tree since "
         r"0.29\), which serving.image vllm/vllm-openai:v0.33.0 does not contain: use an image with vllm-bnb-plugin "
         r"installed, or serving.backend sglang$"),
    Case("gguf-source-not-one-file", ["support_assistant", "model.quantization=gguf", "+serving.image=registry.example/vllm-gguf:0.33.0"],
         OVERRIDE, "model.quantization", r"^model.quantization gguf needs model.source to name one GGUF file: a local path "
         r"ending in .gguf or '<hub repo>:<quant type>' \(e.g. unsloth/Qwen3-0.6B-GGUF:Q4_K_M\), not 'Qwen/Qwen2.5-1.5B-Instruct'$"),
    Case("vllm-needs-llm", ["churn", "serving=vllm"], ("recipes/serving/vllm.yaml", "backend: vllm"), "serving.backend",
         r"serving.backend vllm needs model.kind llm, not tabular"),
    Case("tgi-needs-llm", ["churn", "serving=tgi"], ("recipes/serving/tgi.yaml", "backend: tgi"), "serving.backend",
         r"^serving.backend tgi needs model.kind llm, not tabular$"),
    Case("ray-serve-is-not-for-llm", ["support_assistant", "serving=ray_serve"], ("recipes/serving/ray_serve.yaml", "backend: ray_serve"),
         "serving.backend", r"^serving.backend ray_serve serves exported tabular models: use vllm, sglang or ray_serve_llm for model.kind llm$"),
    Case("tensor-parallel-above-gpus", ["support_assistant", "serving.tensor_parallel_size=2"], OVERRIDE,
         "serving.tensor_parallel_size", r"serving.tensor_parallel_size \(2\) must be <= serving.resources.gpu \(1\)"),
    Case("tgi-shards-above-gpus", ["support_assistant", "serving=tgi", "serving.tensor_parallel_size=4", "serving.resources.gpu=2"],
         OVERRIDE, "serving.tensor_parallel_size",
         r"^serving.tensor_parallel_size \(4\) must be <= serving.resources.gpu \(2\), the GPUs of a replica$"),
    Case("ray-serve-llm-tensor-parallel-above-gpus", ["support_assistant", "serving=ray_serve_llm", "rollout=direct",
         "serving.tensor_parallel_size=8"], OVERRIDE, "serving.tensor_parallel_size",
         r"^serving.tensor_parallel_size \(8\) must be <= serving.resources.gpu \(1\), the GPUs of a replica$"),
    Case("exl2-sharded-on-tgi", ["support_assistant", "serving=tgi", "model.quantization=exl2", "serving.tensor_parallel_size=2",
         "serving.resources.gpu=2"], OVERRIDE, "model.quantization",
         r"^model.quantization exl2 cannot be sharded by TGI: serving.tensor_parallel_size must be 1, not 2$"),
    Case("tgi-dtype-float32", ["support_assistant", "serving=tgi", "model.dtype=float32"], OVERRIDE, "model.dtype",
         r"^model.dtype float32 is not served by serving.backend tgi: use auto, float16, bfloat16$"),
    Case("tgi-prompt-fills-the-budget", ["support_assistant", "serving=tgi", "serving.max_input_length=8192"], OVERRIDE,
         "serving.max_input_length", r"^serving.max_input_length \(8192\) must be < serving.max_total_tokens \(8192\): "
         r"the rest is what the model may generate$"),
    Case("tgi-total-above-model", ["support_assistant", "serving=tgi", "serving.max_total_tokens=9000"], OVERRIDE,
         "serving.max_total_tokens", r"^serving.max_total_tokens \(9000\) must be <= model.max_model_len \(8192\)$"),
    # SGLang: its own quantization list, tensor parallelism within the GPUs, context within the model's
    Case("sglang-needs-llm", ["churn", "serving=sglang"], (S, "backend: sglang"), "serving.backend",
         r"^serving.backend sglang needs model.kind llm, not tabular$"),
    Case("quantization-not-for-sglang", ["support_assistant", "serving=sglang", "model.quantization=eetq"], OVERRIDE,
         "model.quantization", r"^model.quantization eetq is not supported by serving.backend sglang; supported: awq, "
         r"bitsandbytes, fp8, gguf, gptq, marlin, none$"),
    Case("quantization-sglang-only", ["support_assistant", "model.quantization=marlin"], OVERRIDE,
         "model.quantization", r"^model.quantization marlin is not supported by serving.backend vllm; supported: awq, "
         r"bitsandbytes, fp8, gguf, gptq, none$"),
    Case("sglang-tensor-parallel-above-gpus", ["support_assistant", "serving=sglang", "serving.tensor_parallel_size=4",
         "serving.resources.gpu=2"], OVERRIDE, "serving.tensor_parallel_size",
         r"^serving.tensor_parallel_size \(4\) must be <= serving.resources.gpu \(2\), the GPUs of a replica$"),
    Case("sglang-context-above-model", ["support_assistant", "serving=sglang"], (S, "context_length: 32768"),
         "serving.context_length", r"^serving.context_length \(32768\) must be <= model.max_model_len \(8192\)$",
         [replace(S, "context_length: 8192", "context_length: 32768")]),
    Case("sglang-gguf-from-the-hub", ["support_assistant", "serving=sglang", "model.quantization=gguf",
         "model.source=unsloth/Qwen3-0.6B-GGUF:Q4_K_M"], OVERRIDE, "model.quantization",
         r"^model.quantization gguf on serving.backend sglang needs model.source to be a local path ending in .gguf "
         r"\(it reads no '<hub repo>:<quant type>'\), not 'unsloth/Qwen3-0.6B-GGUF:Q4_K_M'$"),
    Case("sglang-memory-fraction-above-1", ["support_assistant", "serving=sglang", "serving.mem_fraction_static=1.5"],
         OVERRIDE, "serving.mem_fraction_static", r"^must be less than or equal to 1, got 1.5$"),
    Case("ray-serve-llm-needs-direct-rollout", ["support_assistant", "serving=ray_serve_llm"], ("recipes/rollout/shadow.yaml", "strategy: shadow"),
         "rollout.strategy", r"^rollout.strategy shadow routes traffic between model versions, which serving.backend "
         r"ray_serve_llm cannot \(KubeRay owns the pods and Ray Serve LLM serves one model\): use strategy direct$"),
    Case("gate-for-unknown-metric", ["churn", "+evaluation.gates.min_acuracy=0.5"], OVERRIDE, "evaluation.gates.min_acuracy",
         r"evaluation.gates.min_acuracy is not a gate \(did you mean 'min_accuracy'\?\)"),
    Case("replicas-min-above-max", ["churn", "serving.replicas.min=5", "serving.replicas.max=2"], OVERRIDE,
         "serving.replicas.min", r"serving.replicas.min \(5\) must be <= serving.replicas.max \(2\)"),
    Case("metric-for-wrong-task", ["churn", "evaluation.metrics=[accuracy,mrr]"], OVERRIDE, "evaluation.metrics.1",
         r"evaluation.metrics.1 \(mrr\) does not apply to model.task classification"),
    Case("chunk-overlap-not-below-size", ["support_assistant", "rag.chunking.overlap=900"], OVERRIDE, "rag.chunking.overlap",
         r"rag.chunking.overlap \(900\) must be < rag.chunking.size \(800\)"),
    # a RayJob on a cluster cannot read the checkout: the key's own file:line says so
    Case("relative-data-on-the-cluster", ["churn", "--env", "staging"],
         ("recipes/data/location/churn_staging.yaml", "uri: data/staging.csv"), "data.source.uri",
         r"^data.source.uri 'data/staging.csv' is relative to the project, but training.engine ray trains in a RayJob on "
         r"the cluster in environment staging, which cannot see this checkout: use s3://bucket/path, gs://bucket/path, "
         r"or an absolute path on a volume mounted in the job's pods$",
         [replace("recipes/data/location/churn_staging.yaml", "uri: s3://example-ml-data/churn/staging/churn.csv",
                  "uri: data/staging.csv")]),
    Case("relative-data-in-a-pytorchjob", ["churn", "--env", "prod", "training=pytorchjob_gpu", "data.source.uri=file:data/x.csv"],
         OVERRIDE, "data.source.uri", r"trains in a PyTorchJob on the cluster in environment prod"),
    # the batch job (ray/batch-rayjob.yaml, k8s/batch-cronjob.yaml): no dead keys, data the cluster reaches
    Case("batch-schedule-without-input", ["churn", "--env", "prod"], (B, "schedule:"), "batch.schedule",
         r"^batch.schedule '0 3 \* \* \*' starts the batch RayJob, which scores batch.input into batch.output; "
         r"batch.input is not set: set both, or drop batch.schedule$",
         [replace(B, "input: s3://example-ml-data/churn/prod/customers/\n", "")]),
    Case("batch-schedule-alone", ["churn", "+batch.schedule=@daily"], OVERRIDE, "batch.schedule",
         r"^batch.schedule '@daily' starts the batch RayJob, .*; batch.input and batch.output are not set: set both, "
         r"or drop batch.schedule$"),
    Case("batch-input-without-output", ["churn", "+batch.input=s3://bucket/customers/"], OVERRIDE, "batch.input",
         r"^batch.input is set but batch.output is not: the batch RayJob scores batch.input into batch.output; "
         r"set both, or neither$"),
    Case("batch-relative-input-on-the-cluster", ["churn", "--env", "staging"],
         ("recipes/batch/churn_staging.yaml", "input: data/customers.csv"), "batch.input",
         r"^batch.input 'data/customers.csv' is relative to the project, but the batch RayJob reads it on the cluster "
         r"in environment staging, which cannot see this checkout: use s3://bucket/path, gs://bucket/path, or an "
         r"absolute path in the job's image$",
         [replace("recipes/batch/churn_staging.yaml", "input: s3://example-ml-data/churn/staging/customers/",
                  "input: data/customers.csv")]),
    Case("batch-local-output-on-the-cluster", ["churn", "--env", "prod", "batch.output=/tmp/scores"], OVERRIDE,
         "batch.output", r"^batch.output '/tmp/scores' is a local path, but the batch RayJob writes it from a pod on the "
         r"cluster in environment prod, whose files go with the job: use s3://bucket/path or gs://bucket/path$"),
    Case("batch-output-inside-input", ["churn", "--env", "staging",
                                       "batch.output=s3://example-ml-data/churn/staging/customers/scores/"], OVERRIDE,
         "batch.output", r"^batch.output 's3://example-ml-data/churn/staging/customers/scores/' overlaps batch.input "
         r"'s3://example-ml-data/churn/staging/customers/': each run of the batch RayJob replaces what batch.output "
         r"holds, the input included; give the scores a folder of their own$"),
    Case("batch-job-for-an-llm", ["support_assistant", "+batch.input=s3://b/in", "+batch.output=s3://b/out"], OVERRIDE,
         "batch.input", r"^batch.input sets up the batch RayJob, which scores tabular models \(`mlops batch`\), but "
         r"model.kind is llm: drop batch.input and batch.output$"),
    Case("batch-job-for-torchscript", ["churn", "--env", "prod", "serving.format=torchscript", "serving.instances.kind=gpu",
                                       "+serving.resources.gpu=1"], (B, "input:"), "batch.input",
         r"^batch.input sets up the batch RayJob, which scores the registered ONNX model with ONNX Runtime, but "
         r"serving.format torchscript registers a TorchScript file: use serving.format onnx, or drop batch.input and "
         r"batch.output$"),
    Case("batch-schedule-not-cron", ["churn", "--env", "prod", "batch.schedule=nightly"], OVERRIDE, "batch.schedule",
         r"^'nightly' is not a cron schedule: use 5 fields"),
    Case("batch-alias-reserved", ["churn", "+batch.alias=latest"], OVERRIDE, "batch.alias",
         r"^'latest' is reserved by MLflow for versions \(latest, v<N>\): name an alias such as champion$"),
    Case("batch-alias-not-an-alias", ["churn", "+batch.alias='the best'"], OVERRIDE, "batch.alias",
         r"^'the best' is not an MLflow alias: use letters, digits, '_' and '-' \(at most 255 characters\)$"),
    Case("empty-tracking-uri", ["churn", "--env", "staging", "tracking.uri=''"], OVERRIDE, "tracking.uri",
         r"^is empty \(an unset variable such as MLFLOW_TRACKING_URI\?\): give the server's URI, or null for the embedded store$"),
    # tracking.backends: MLflow stays (the registry), W&B beside it; its settings only with it, its key a reference
    Case("tracking-backends-without-mlflow", ["churn"], (C, "backends: [wandb]"), "tracking.backends",
         r"^must include mlflow: it is the model registry that serving, rollout and lineage read "
         r"\(write \[mlflow, wandb\] to add W&B\)$", [append(C, "tracking:\n  backends: [wandb]\n")]),
    Case("tracking-backend-twice", ["churn", "+tracking.backends=[mlflow,wandb,wandb]"], OVERRIDE, "tracking.backends",
         r"^lists wandb more than once$"),
    Case("tracking-backend-misspelled", ["churn", "+tracking.backends=[mlflow,wandbb]"], OVERRIDE, "tracking.backends.1",
         r"^'wandbb' is not allowed \(did you mean 'wandb'\?\); one of: 'mlflow' or 'wandb'$"),
    Case("wandb-settings-without-the-backend", ["churn", "+tracking.wandb.project=churn-runs"], OVERRIDE, "tracking.wandb",
         r"^tracking.wandb is set but tracking.backends does not list wandb, so nothing reads it: add wandb to "
         r"tracking.backends, or drop tracking.wandb$"),
    Case("wandb-api-key-as-literal", ["churn", "+tracking.backends=[mlflow,wandb]",
                                      "+tracking.wandb={mode: online, api_key: 0123456789abcdef}"], OVERRIDE,
         "tracking.wandb.api_key", r"^a secret is a reference \{name, key\} to a Kubernetes Secret, never a literal value"),
    Case("wandb-online-without-a-key", ["churn", WANDB, "+tracking.wandb.mode=online"], OVERRIDE, "tracking.wandb.mode",
         r"^tracking.wandb.mode online logs in with tracking.wandb.api_key, which is not set: reference the Kubernetes "
         r"Secret holding the W&B API key \(\{name, key\}\)$"),
    Case("wandb-key-while-offline", ["churn", WANDB, "+tracking.wandb.api_key={name: wandb, key: api-key}"], OVERRIDE,
         "tracking.wandb.api_key", r"^tracking.wandb.api_key is used only with tracking.wandb.mode online \(an offline "
         r"run never logs in\): drop it, or set mode: online$"),
    Case("wandb-offline-on-the-cluster", ["churn", "--env", "prod", WANDB], OVERRIDE, "tracking.backends",
         r"^tracking.wandb.mode offline writes the W&B runs that tracking.backends asks for into the job's pod on the "
         r"cluster in environment prod, whose files go with the job: use mode online \(with tracking.wandb.api_key\) "
         r"there$"),
    Case("wandb-offline-said-on-the-cluster", ["churn", "--env", "staging", WANDB, "+tracking.wandb.mode=offline"],
         OVERRIDE, "tracking.wandb.mode", r"^tracking.wandb.mode offline writes the W&B runs .* in environment staging"),
    Case("wandb-project-with-a-slash", ["churn", WANDB, "+tracking.wandb.project=ml/churn"], OVERRIDE,
         "tracking.wandb.project", r"^'ml/churn' is not a W&B name: 1 to 128 characters, none of / \\ # \? % : or spaces$"),
]


def _expected_where(case: Case, root: Path) -> str:
    if isinstance(case.where, str):
        return case.where
    file, marker = case.where
    if marker is None:
        return f"{file}:1"
    lines = (root / file).read_text().splitlines()
    number = next(i for i, line in enumerate(lines, 1) if marker.rstrip("\n") in line)
    return f"{file}:{number}"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_reported_exactly(case: Case, project: Path) -> None:
    for edit in case.edits:
        edit(project)
    before = tree_snapshot(project)

    result = run_cli("validate", *case.args)

    assert result.exit_code == 1, result.stdout + result.stderr
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.stdout + result.stderr
    prefix = f"{_expected_where(case, project)}: " + (f"{case.key}: " if case.key else "")
    lines = [line for line in result.stderr.splitlines() if line.startswith(prefix)]
    assert lines, f"no line starting {prefix!r} in:\n{result.stderr}"
    assert re.search(case.message, lines[0][len(prefix):]), f"{lines[0]!r} !~ {case.message!r}"
    assert tree_snapshot(project) == before, "validate must write nothing"
    assert not (project / ".mlops").exists()


def test_there_are_at_least_40_cases() -> None:
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)
