"""The typed contract between the phases: what `generate` writes and the runtime reads,
named once. Pure data and pure functions; imports only recipe-level modules, the
standard library and light libraries (yaml; jinja2 only when rendering), nothing from
`targets/` or `runtime/`, so both sides can depend on it.

entrypoints (the modules manifests call), resolved (the resolved recipe's bytes),
triton (Triton's typed ModelConfig and its config.pbtxt), registry (the model aliases),
metrics (the framework's metric specs), ray (Serve deployments, the runtime env),
llm (vLLM's command line), workflows (the workflow file names), tracking (the tracking
backends' secrets).
"""
