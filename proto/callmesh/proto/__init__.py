"""callmesh.proto: the bus contract — protobuf events and commands (v1) and their addresses."""
