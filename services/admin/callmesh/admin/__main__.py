"""Run the admin service: ``python -m callmesh.admin``."""

from __future__ import annotations

from callmesh.admin.app import AdminSettings, build
from callmesh.core.runtime import run_service


def main() -> None:
    """Read settings from the environment and run until SIGTERM."""
    run_service(build(AdminSettings()))


if __name__ == "__main__":
    main()
