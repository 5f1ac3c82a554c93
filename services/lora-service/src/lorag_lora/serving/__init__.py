"""The OpenAI-compatible inference API with adapters chosen per request."""
