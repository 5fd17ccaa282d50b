"""callmesh cti service: the ESL link to one FreeSWITCH node (events, switch commands,

heartbeats, mod_xml_curl) and the call journal.
"""
