"""Run the ivr service: ``python -m callmesh.ivr``."""

from __future__ import annotations

from callmesh.core.runtime import run_service
from callmesh.ivr.app import IvrSettings, build


def main() -> None:
    """Read settings from the environment and run until SIGTERM."""
    run_service(build(IvrSettings()))


if __name__ == "__main__":
    main()
