"""Generated protobuf code for callmesh.proto.v1 (do not edit the *_pb2 files; run `make proto`)."""
