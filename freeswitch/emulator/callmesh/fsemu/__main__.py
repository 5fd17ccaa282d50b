"""Run the FreeSWITCH emulator: ``python -m callmesh.fsemu --help``."""

from __future__ import annotations

import sys

from callmesh.fsemu.cli import main

if __name__ == "__main__":
    sys.exit(main())
