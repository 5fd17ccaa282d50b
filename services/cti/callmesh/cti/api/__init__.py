"""cti api."""
