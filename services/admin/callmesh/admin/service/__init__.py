"""admin service."""
