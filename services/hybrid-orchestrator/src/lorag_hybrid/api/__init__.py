"""The hybrid-orchestrator's HTTP API (service port, service token)."""
