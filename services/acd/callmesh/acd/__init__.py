"""callmesh acd service: queues, skills, agent states, routing, overflow and the waiting

experience.
"""
