"""SQL migrations of the gateway: API tokens."""
