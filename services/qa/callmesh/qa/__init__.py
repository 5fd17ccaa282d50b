"""callmesh package."""
