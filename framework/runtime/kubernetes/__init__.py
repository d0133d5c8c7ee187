"""`apply --target kubernetes`: the generated manifests applied server-side in dependency
order (apply), through a small REST client (client, rest), with readiness waits (ready),
object helpers (objects) and API errors turned into one line each (errors)."""
