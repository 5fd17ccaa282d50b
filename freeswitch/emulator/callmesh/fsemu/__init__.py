"""callmesh.fsemu: the FreeSWITCH emulator (not built yet; see freeswitch/emulator/README.md)."""
