"""python -m lorag_gateway runs the gateway."""

from lorag_gateway.main import run

run()
