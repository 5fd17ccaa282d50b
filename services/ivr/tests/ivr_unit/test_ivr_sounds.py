"""SoundResolver: each kind of sound becomes what FreeSWITCH plays."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from callmesh.core.errors import InvalidInput
from callmesh.core.media import MediaUrlSigner
from callmesh.ivr.adapters.sounds import (
    NoSuchPrompt,
    SoundResolver,
    check_sound_path,
    file_string,
)
from callmesh.ivr.domain.commands import Sound
from callmesh.ivr.domain.flow import PromptKind

SECRET = b"a-media-secret-of-enough-bytes!!"


class Library:
    """An in-memory prompt library."""

    def __init__(self, media: dict[tuple[str, str, str], str]) -> None:
        self.media = media

    async def media_for(self, tenant_id: str, prompt_id: str, language: str) -> str | None:
        """The recording's media id."""
        return self.media.get((tenant_id, prompt_id, language))


class Voice:
    """An in-memory speech port that names media after the text."""

    def __init__(self) -> None:
        self.spoken: list[tuple[str, str, str]] = []

    async def synthesize(self, tenant_id: str, text: str, language: str) -> str:
        """A media id per text."""
        self.spoken.append((tenant_id, text, language))
        return f"tts-{len(self.spoken)}"


def resolver(voice: Voice | None = None) -> SoundResolver:
    library = Library({("acme", "welcome", "en"): "m-welcome-en"})
    return SoundResolver(
        signer=MediaUrlSigner(SECRET),
        base_url="http://127.0.0.1:8102/",
        speech=voice or Voice(),
        prompts=library,
    )


def test_switch_sounds_are_played_as_given() -> None:
    assert check_sound_path("ivr/ivr-welcome.wav") == "ivr/ivr-welcome.wav"
    assert check_sound_path("/usr/share/freeswitch/sounds/en/us/callie/ivr/8000/ivr-welcome.wav")


@pytest.mark.parametrize(
    "path",
    [
        "../etc/passwd",
        "ivr/../../x.wav",
        "/etc/passwd",
        "a!b.wav",
        "${x}.wav",
        "a b.wav",
        "",
        "./x",
    ],
)
def test_sound_paths_that_escape_or_inject_are_refused(path: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        check_sound_path(path)
    assert raised.value.field == "sound"


async def test_media_becomes_a_signed_http_cache_url_that_verifies() -> None:
    url = await resolver().resolve("acme", Sound(PromptKind.MEDIA, "abc123", "en"))
    assert url.startswith("http_cache://http://127.0.0.1:8102/media/acme/abc123.wav?")
    query = parse_qs(urlsplit(url.removeprefix("http_cache://")).query)
    MediaUrlSigner(SECRET).verify("acme", "abc123", query["exp"][0], query["sig"][0])


async def test_tts_is_synthesized_in_the_sound_language_or_the_default() -> None:
    voice = Voice()
    sounds = resolver(voice)
    first = await sounds.resolve("acme", Sound(PromptKind.TTS, "Hello", "zh"))
    await sounds.resolve("acme", Sound(PromptKind.TTS, "Hi", ""), default_language="en")
    assert "/media/acme/tts-1.wav?" in first
    assert voice.spoken == [("acme", "Hello", "zh"), ("acme", "Hi", "en")]


async def test_library_prompts_fall_back_to_the_default_language() -> None:
    sounds = resolver()
    url = await sounds.resolve(
        "acme", Sound(PromptKind.PROMPT, "welcome", "zh"), default_language="en"
    )
    assert "/media/acme/m-welcome-en.wav?" in url
    with pytest.raises(NoSuchPrompt):
        await sounds.resolve("acme", Sound(PromptKind.PROMPT, "missing", "en"))
    with pytest.raises(NoSuchPrompt):
        await sounds.resolve("other", Sound(PromptKind.PROMPT, "welcome", "en"))


async def test_bad_media_ids_and_tenants_are_refused() -> None:
    with pytest.raises(InvalidInput):
        await resolver().resolve("acme", Sound(PromptKind.MEDIA, "../x", "en"))
    with pytest.raises(InvalidInput):
        await resolver().resolve("Not A Tenant", Sound(PromptKind.MEDIA, "x", "en"))


async def test_several_sounds_play_as_one_file_string() -> None:
    played = await resolver().playback(
        "acme", [Sound(PromptKind.SOUND, "ivr/a.wav", "en"), Sound(PromptKind.MEDIA, "m1", "en")]
    )
    assert played.startswith("file_string://ivr/a.wav!http_cache://")
    assert file_string(["one.wav"]) == "one.wav"
