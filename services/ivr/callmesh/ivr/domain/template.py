"""Templates: text with ``{variable}`` holes (TTS text, HTTP URLs, headers and bodies)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import lru_cache

from callmesh.ivr.domain.expr import MAX_SOURCE, MAX_STRING, ExprError

__all__ = ["render", "template_names"]

_NAME = re.compile(r"[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*")


@lru_cache(maxsize=4096)
def _pieces(template: str) -> tuple[tuple[str, bool], ...]:
    """The template as (text, is_variable) pieces; ExprError names the column of a bad hole."""
    if len(template) > MAX_SOURCE * 5:
        raise ExprError(f"template longer than {MAX_SOURCE * 5} characters", 0)
    pieces: list[tuple[str, bool]] = []
    text: list[str] = []
    at = 0
    while at < len(template):
        char = template[at]
        if char == "{":
            if template.startswith("{{", at):
                text.append("{")
                at += 2
                continue
            end = template.find("}", at)
            if end < 0:
                raise ExprError("unclosed {", at)
            name = template[at + 1 : end].strip()
            if not _NAME.fullmatch(name):
                raise ExprError(f"{name!r} is not a variable name", at)
            if text:
                pieces.append(("".join(text), False))
                text = []
            pieces.append((name, True))
            at = end + 1
        elif char == "}":
            if not template.startswith("}}", at):
                raise ExprError("} without {; write }} for a brace", at)
            text.append("}")
            at += 2
        else:
            text.append(char)
            at += 1
    if text:
        pieces.append(("".join(text), False))
    return tuple(pieces)


def template_names(template: str) -> frozenset[str]:
    """The variables a template uses; ExprError when it does not parse."""
    return frozenset(piece for piece, is_name in _pieces(template) if is_name)


def render(
    template: str,
    variables: Mapping[str, str],
    escape: Callable[[str], str] | None = None,
) -> str:
    """The template with its holes filled (unknown variables are ""); ``escape`` each value
    (e.g. URL quoting). The result is cut at the string limit."""
    out = "".join(
        (escape(variables.get(piece, "")) if escape else variables.get(piece, ""))
        if is_name
        else piece
        for piece, is_name in _pieces(template)
    )
    return out[:MAX_STRING]
