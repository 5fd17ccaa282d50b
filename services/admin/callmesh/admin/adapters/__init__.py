"""admin adapters."""
