"""callmesh admin service: tenancy and identity (tenants, quotas, numbers, sites, users, roles,

API keys, tokens, JWKS, audit).
"""
