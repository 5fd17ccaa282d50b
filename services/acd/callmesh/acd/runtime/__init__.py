"""The acd service at run time: partitions per tenant, the engine actor, switch commands."""
