"""Run the outbound service: ``python -m callmesh.outbound``."""

from __future__ import annotations

from callmesh.core.runtime import run_service
from callmesh.outbound.app import OutboundSettings, build


def main() -> None:
    """Read settings from the environment and run until SIGTERM."""
    run_service(build(OutboundSettings()))


if __name__ == "__main__":
    main()
