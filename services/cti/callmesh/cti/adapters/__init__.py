"""cti adapters."""
