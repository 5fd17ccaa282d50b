"""``callmesh admin …``: operator commands that work on an empty platform (being built)."""

from __future__ import annotations

import click


@click.group()
def admin() -> None:
    """Administer the platform (bootstrap and recovery commands)."""
