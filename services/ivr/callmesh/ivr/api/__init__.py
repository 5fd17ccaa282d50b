"""ivr HTTP API."""
