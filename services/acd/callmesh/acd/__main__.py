"""Run the acd service: ``python -m callmesh.acd``."""

from __future__ import annotations

from callmesh.acd.app import AcdSettings, build
from callmesh.core.runtime import run_service


def main() -> None:
    """Read settings from the environment and run until SIGTERM."""
    run_service(build(AcdSettings()))


if __name__ == "__main__":
    main()
