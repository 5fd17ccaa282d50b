"""Run the qa service: ``python -m callmesh.qa``."""

from __future__ import annotations

from callmesh.core.runtime import run_service
from callmesh.qa.app import QaSettings, build


def main() -> None:
    """Read settings from the environment and run until SIGTERM."""
    run_service(build(QaSettings()))


if __name__ == "__main__":
    main()
