"""What every lorag service process shares: its runtime, health endpoint and run loop."""

from lorag_core.service.host import Runtime, ServiceHost

__all__ = ["Runtime", "ServiceHost"]
