"""The hybrid-orchestrator's HTTP API, one module per resource."""
