"""SQL migrations of the hybrid-orchestrator: sagas and minions."""
