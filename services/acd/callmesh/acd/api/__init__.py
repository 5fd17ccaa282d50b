"""acd HTTP API."""
