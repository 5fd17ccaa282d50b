"""ivr integration tests (real NATS, FerretDB, the emulator)."""
