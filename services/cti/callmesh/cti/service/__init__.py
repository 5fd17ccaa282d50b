"""cti use cases."""
