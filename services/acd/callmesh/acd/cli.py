"""``callmesh acd …``: tools around the ACD (the simulator)."""

from __future__ import annotations

import click


@click.group()
def acd() -> None:
    """ACD tools: simulate routing on a virtual clock."""
