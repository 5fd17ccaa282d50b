"""callmesh ivr service: the outbound-socket server running tenants' published IVR flows, with

TTS, trails and dry runs.
"""
