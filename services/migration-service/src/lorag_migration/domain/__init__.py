"""The migration-service's domain: pure rules, no database or broker clients."""
