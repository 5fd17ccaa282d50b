"""ivr use cases."""
