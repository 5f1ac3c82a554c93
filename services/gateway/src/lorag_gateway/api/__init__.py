"""The HTTP API, one router per area; each route parses, calls a plain function, returns."""
