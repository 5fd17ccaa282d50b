"""What the admin's use cases need from outside, as protocols (implemented in adapters)."""
