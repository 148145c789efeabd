"""The cocotb conformance suite: one module per area, each test tagged with requirement IDs."""

MODULES = ("probe", "requests", "events", "rings", "chains", "state")
