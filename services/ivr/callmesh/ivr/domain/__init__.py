"""ivr: the flow model, the engine and the pure rules."""
