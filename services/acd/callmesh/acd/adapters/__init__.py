"""acd adapters."""
