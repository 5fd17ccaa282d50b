"""callmesh outbound service: campaigns, contact lists, pacing and compliance."""
