"""Run the cti service: ``python -m callmesh.cti``."""

from __future__ import annotations

from callmesh.core.runtime import run_service
from callmesh.cti.app import CtiSettings, build


def main() -> None:
    """Read settings from the environment and run until SIGTERM."""
    run_service(build(CtiSettings()))


if __name__ == "__main__":
    main()
