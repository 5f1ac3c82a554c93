"""The lora-service's rules: datasets, batching, architectures, registry names. No I/O clients."""
