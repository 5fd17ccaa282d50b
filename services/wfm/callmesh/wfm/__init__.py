"""callmesh wfm service: interval statistics, live KPIs and alarms, forecasts, staffing,

schedules, adherence and reports.
"""
