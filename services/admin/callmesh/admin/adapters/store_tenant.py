"""MongoDB adapters of the tenant area (being built)."""

from __future__ import annotations

from callmesh.core.store import CollectionSpec

COLLECTIONS: tuple[CollectionSpec, ...] = ()
