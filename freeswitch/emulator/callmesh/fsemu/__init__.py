"""callmesh.fsemu: a FreeSWITCH stand-in speaking the Event Socket protocol (see README.md)."""
