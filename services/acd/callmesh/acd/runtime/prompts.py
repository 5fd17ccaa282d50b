"""Prompt ids → what FreeSWITCH plays.

The engine names prompts by id (``acd/position``, ``moh/default``, a queue's ``entry`` …) and the
caller's language. The mapping (``docs/acd.md``):

- an id holding ``://`` or starting with ``/`` is used as it is (a URL such as
  ``http_cache://…`` or an absolute path), ``{lang}`` replaced;
- an id holding ``{lang}`` gets the language there, ``.wav`` when it has no extension, and the
  media prefix in front;
- music on hold (``moh/…``) is not per language: ``<prefix>moh/<name>.wav``;
- any other ``<dir>/<name>`` becomes ``<prefix><dir>/<lang>/<name>.wav`` (``<name>`` alone:
  ``<prefix><lang>/<name>.wav``).

The prefix is empty by default: paths relative to FreeSWITCH's ``$${sounds_dir}`` (the emulator
resolves them against its media dir). A prompt's parameters (a position, seconds, an agent id)
follow it as ``phrase:<say_macro>:<value>`` entries, one each, which FreeSWITCH's phrase engine
speaks (set ``say_macro`` empty to drop them).
"""

from __future__ import annotations

from dataclasses import dataclass

from callmesh.acd.domain.effects import Prompt

_AUDIO_SUFFIXES = (".wav", ".mp3", ".ogg", ".flac", ".gsm", ".ulaw", ".alaw", ".raw")


@dataclass(frozen=True)
class PromptResolver:
    """Resolves prompt ids to playable files."""

    prefix: str = ""
    default_language: str = "en"
    say_macro: str = "callmesh_say"

    def file(self, prompt_id: str, language: str = "") -> str:
        """The file (or URL) of one prompt id in one language."""
        lang = language or self.default_language
        if "://" in prompt_id or prompt_id.startswith("/"):
            return prompt_id.replace("{lang}", lang)
        if "{lang}" in prompt_id:
            path = prompt_id.replace("{lang}", lang)
        elif prompt_id.startswith("moh/"):
            path = prompt_id
        else:
            head, sep, name = prompt_id.rpartition("/")
            path = f"{head}/{lang}/{name}" if sep else f"{lang}/{name}"
        if not path.lower().endswith(_AUDIO_SUFFIXES):
            path += ".wav"
        return self.prefix + path

    def files(self, prompt: Prompt, language: str = "") -> list[str]:
        """The prompt's file followed by its spoken parameters."""
        out = [self.file(prompt.prompt_id, language)]
        if self.say_macro:
            for name in sorted(prompt.params):
                value = prompt.params[name]
                if value:
                    out.append(f"phrase:{self.say_macro}:{value}")
        return out
