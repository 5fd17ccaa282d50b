"""callmesh qa service: recording search and playback, scorecards, evaluations and the monitoring

log.
"""
