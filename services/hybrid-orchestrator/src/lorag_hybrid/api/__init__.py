"""The hybrid-orchestrator's HTTP API (service port, service token), one module per resource."""
