"""ivr adapters: MongoDB, the bus, the switch, speech."""
