"""ivr unit tests."""
