"""Run the wfm service: ``python -m callmesh.wfm``."""

from __future__ import annotations

from callmesh.core.runtime import run_service
from callmesh.wfm.app import WfmSettings, build


def main() -> None:
    """Read settings from the environment and run until SIGTERM."""
    run_service(build(WfmSettings()))


if __name__ == "__main__":
    main()
