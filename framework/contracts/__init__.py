"""The typed contract between the phases: what `generate` writes and the runtime reads,
named once. Pure data and pure functions; imports nothing heavy and nothing from
`targets/` or `runtime/`, so both sides can depend on it."""
