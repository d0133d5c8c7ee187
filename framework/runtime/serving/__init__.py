"""The serving app (KServe v2 over ASGI) in small parts: model_config (config.pbtxt),
repository (model versions and their runners), batcher (dynamic batching), protocol
(requests and responses), router (the rollout hook), metrics, request_log, app (the
ASGI application) and the hosts' helpers (registry_source, ray_host).
framework.runtime.serving.host builds the app and runs it embedded or on Ray Serve."""
