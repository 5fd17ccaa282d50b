"""cti domain."""
