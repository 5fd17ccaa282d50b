"""Engine ``Sound``s turned into what FreeSWITCH plays: sound paths and signed http_cache URLs.

A ``Sound`` of kind

- ``SOUND`` is a file on the switch (``ivr/ivr-welcome.wav``), played as is once checked: a
  relative path without ``..``, or an absolute one under one of the switch's sound directories;
- ``MEDIA`` is a media id of the tenant's media store, played through
  ``http_cache://http://<ivr>/media/<tenant>/<media_id>.wav?exp=…&sig=…`` (HMAC-signed, expiring:
  FreeSWITCH cannot send a bearer token; ``api/media.py`` serves it);
- ``TTS`` is text, spoken once by the ``Speech`` port (cached in the media store), then MEDIA;
- ``PROMPT`` is a prompt of the tenant's library: its recording for the language, else for the
  flow's default language (``PromptLibrary``), then MEDIA.

Several sounds are played together as ``file_string://a!b`` (``file_string``); no resolved
sound ever contains ``!``, whitespace, ``$``, ``{`` or ``}``, so none can break out of that list
or expand a channel variable.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Protocol

from callmesh.core.errors import InvalidInput, NotFound
from callmesh.core.media import MediaUrlSigner, check_media_id
from callmesh.ivr.domain.commands import Sound
from callmesh.ivr.domain.flow import PromptKind
from callmesh.ivr.ports import Speech
from callmesh.proto.subjects import check_tenant_id

__all__ = [
    "DEFAULT_SOUND_DIRS",
    "MEDIA_URL_TTL_S",
    "NoSuchPrompt",
    "PromptLibrary",
    "SoundResolver",
    "check_sound_path",
    "file_string",
    "media_route_path",
]

# Where FreeSWITCH packages put their sounds (Debian packages, source builds).
DEFAULT_SOUND_DIRS: tuple[str, ...] = (
    "/usr/share/freeswitch/sounds",
    "/usr/local/freeswitch/sounds",
)
# A day: FreeSWITCH's http_cache keys by the whole URL and the signer rounds expiries to the TTL,
# so a prompt is fetched about once a day per switch rather than once per call.
MEDIA_URL_TTL_S = 86_400
_SOUND_PATH_RE = re.compile(
    r"^[A-Za-z0-9_][A-Za-z0-9_.+@%=,-]*(/[A-Za-z0-9_][A-Za-z0-9_.+@%=,-]*)*$"
)
_SOUND_PATH_MAX = 512


class NoSuchPrompt(NotFound):
    """A flow plays a library prompt that has no recording in the language nor the default."""

    code = "no_such_prompt"


class PromptLibrary(Protocol):
    """The tenant's prompt library (H4's ``MongoPromptLibrary`` implements it)."""

    async def media_for(self, tenant_id: str, prompt_id: str, language: str) -> str | None:
        """The media id of the prompt's recording in ``language`` (None: no such recording)."""
        ...


def _tenant(tenant_id: str) -> str:
    try:
        return check_tenant_id(tenant_id)
    except (TypeError, ValueError) as err:
        raise InvalidInput("tenant_id", "must be a tenant slug", str(err)) from err


def media_route_path(tenant_id: str, media_id: str) -> str:
    """The path ``api/media.py`` serves a media file under (``.wav``: FreeSWITCH's format)."""
    return f"/media/{tenant_id}/{media_id}.wav"


def check_sound_path(path: str, sound_dirs: Sequence[str] = DEFAULT_SOUND_DIRS) -> str:
    """A switch sound path: relative without ``..``, or absolute under a sound directory."""
    if not isinstance(path, str) or not path:
        raise InvalidInput("sound", "must not be empty")
    if len(path) > _SOUND_PATH_MAX:
        raise InvalidInput("sound", f"must be at most {_SOUND_PATH_MAX} characters")
    relative = path
    if path.startswith("/"):
        for directory in sound_dirs:
            prefix = directory.rstrip("/") + "/"
            if path.startswith(prefix):
                relative = path[len(prefix) :]
                break
        else:
            raise InvalidInput("sound", "an absolute path must be under the switch's sounds")
    if not _SOUND_PATH_RE.match(relative):
        raise InvalidInput("sound", "must be a plain file path (letters, digits, _ . - /)")
    if any(part in (".", "..") for part in relative.split("/")):
        raise InvalidInput("sound", "must not contain '.' or '..' segments")
    return path


def file_string(paths: Iterable[str]) -> str:
    """One playback argument for several resolved sounds (``file_string://a!b``)."""
    items = list(paths)
    if not items:
        raise InvalidInput("sounds", "must not be empty")
    if len(items) == 1:
        return items[0]
    return "file_string://" + "!".join(items)


class SoundResolver:
    """Resolves engine sounds into playback paths for one ivr process."""

    def __init__(
        self,
        *,
        signer: MediaUrlSigner,
        base_url: str,
        speech: Speech,
        prompts: PromptLibrary,
        sound_dirs: Sequence[str] = DEFAULT_SOUND_DIRS,
        ttl_s: int = MEDIA_URL_TTL_S,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise InvalidInput("base_url", "must be an http(s) URL")
        self._signer = signer
        self._base_url = base_url.rstrip("/")
        self._speech = speech
        self._prompts = prompts
        self._sound_dirs = tuple(sound_dirs)
        self._ttl_s = ttl_s

    def media_url(self, tenant_id: str, media_id: str) -> str:
        """The signed ``http_cache://`` URL of a media file for FreeSWITCH."""
        tenant = _tenant(tenant_id)
        check_media_id(media_id)
        query = self._signer.query(tenant, media_id, ttl_s=self._ttl_s)
        return f"http_cache://{self._base_url}{media_route_path(tenant, media_id)}?{query}"

    async def resolve(self, tenant_id: str, sound: Sound, *, default_language: str = "") -> str:
        """What FreeSWITCH plays for ``sound``; raises ``InvalidInput``/``NoSuchPrompt``."""
        if sound.kind is PromptKind.SOUND:
            return check_sound_path(sound.value, self._sound_dirs)
        if sound.kind is PromptKind.MEDIA:
            return self.media_url(tenant_id, sound.value)
        if sound.kind is PromptKind.TTS:
            language = sound.language or default_language
            media_id = await self._speech.synthesize(tenant_id, sound.value, language)
            return self.media_url(tenant_id, media_id)
        if sound.kind is PromptKind.PROMPT:
            return self.media_url(tenant_id, await self._prompt(tenant_id, sound, default_language))
        raise InvalidInput("sound.kind", f"unknown kind {sound.kind!r}")

    async def resolve_all(
        self, tenant_id: str, sounds: Iterable[Sound], *, default_language: str = ""
    ) -> list[str]:
        """Every sound resolved, in order."""
        return [
            await self.resolve(tenant_id, sound, default_language=default_language)
            for sound in sounds
        ]

    async def playback(
        self, tenant_id: str, sounds: Iterable[Sound], *, default_language: str = ""
    ) -> str:
        """The one ``playback`` argument for ``sounds`` (``file_string://`` when several)."""
        return file_string(
            await self.resolve_all(tenant_id, sounds, default_language=default_language)
        )

    async def _prompt(self, tenant_id: str, sound: Sound, default_language: str) -> str:
        _tenant(tenant_id)
        languages = [sound.language] if sound.language else []
        if default_language and default_language not in languages:
            languages.append(default_language)
        for language in languages:
            media_id = await self._prompts.media_for(tenant_id, sound.value, language)
            if media_id:
                return media_id
        tried = ", ".join(languages) or "no language"
        raise NoSuchPrompt(
            f"prompt {sound.value!r} has no recording ({tried})",
            prompt_id=sound.value,
            languages=languages,
        )
