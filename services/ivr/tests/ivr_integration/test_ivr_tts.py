"""EspeakSpeech with the real espeak-ng and a real media store; the signed media route."""

from __future__ import annotations

import asyncio
import io
import socket
import time
import wave
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from callmesh.core.errors import InvalidInput
from callmesh.core.media import DirectoryMediaStore, MediaKind, MediaUrlSigner
from callmesh.fsemu.media import MediaResolver, wav_duration
from callmesh.ivr.adapters.sounds import SoundResolver
from callmesh.ivr.adapters.tts import OUTPUT_RATE, EspeakSpeech, SpeechFailed, to_freeswitch_wav
from callmesh.ivr.api.media import media_router
from callmesh.ivr.domain.commands import Sound
from callmesh.ivr.domain.flow import PromptKind

SECRET = b"a-media-secret-of-enough-bytes!!"


async def read_all(store: DirectoryMediaStore, tenant: str, media_id: str) -> bytes:
    info = await store.info(tenant, media_id)
    return b"".join([piece async for piece in store.open_range(tenant, media_id, 0, info.size - 1)])


@pytest.mark.parametrize("language", ["en", "zh", "yue"])
async def test_espeak_speaks_a_16k_mono_wav_into_the_tenant_media(
    tmp_path: Path, language: str
) -> None:
    store = DirectoryMediaStore(tmp_path / "media")
    speech = EspeakSpeech(store)
    text = {"en": "Welcome to callmesh", "zh": "欢迎致电", "yue": "歡迎致電"}[language]
    media_id = await speech.synthesize("acme", text, language)
    info = await store.info("acme", media_id)
    assert info.kind is MediaKind.TTS
    assert info.content_type == "audio/wav"
    with wave.open(io.BytesIO(await read_all(store, "acme", media_id)), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, OUTPUT_RATE)
        assert wav.getnframes() > OUTPUT_RATE // 4


async def test_the_same_text_is_spoken_once_and_then_read_from_the_cache(tmp_path: Path) -> None:
    store = DirectoryMediaStore(tmp_path / "media")
    speech = EspeakSpeech(store)
    first = await speech.synthesize("acme", "Press one for sales", "en")
    assert await speech.synthesize("acme", "Press one for sales", "en") == first
    assert speech.runs == 1
    # Another process finds it in the media store, without speaking again.
    again = EspeakSpeech(store)
    assert await again.synthesize("acme", "Press one for sales", "en") == first
    assert again.runs == 0
    # Tenants are walls: another tenant gets its own file.
    other = await speech.synthesize("globex", "Press one for sales", "en")
    assert other != first
    assert speech.runs == 2


async def test_concurrent_requests_for_the_same_text_share_one_synthesis(tmp_path: Path) -> None:
    store = DirectoryMediaStore(tmp_path / "media")
    speech = EspeakSpeech(store)
    ids = await asyncio.gather(
        *(speech.synthesize("acme", "Please hold the line", "en") for _ in range(8))
    )
    assert len(set(ids)) == 1
    assert speech.runs == 1
    assert len(await store.list("acme", MediaKind.TTS)) == 1


@pytest.mark.parametrize(
    ("text", "language", "field"),
    [
        ("hello", "xx", "language"),
        ("hello", "", "language"),
        ("", "en", "text"),
        ("a" * 2001, "en", "text"),
    ],
)
async def test_bad_requests_name_the_field_and_speak_nothing(
    tmp_path: Path, text: str, language: str, field: str
) -> None:
    store = DirectoryMediaStore(tmp_path / "media")
    speech = EspeakSpeech(store)
    with pytest.raises(InvalidInput) as raised:
        await speech.synthesize("acme", text, language)
    assert raised.value.field == field
    assert speech.runs == 0


async def test_text_that_looks_like_an_option_is_spoken_not_obeyed(tmp_path: Path) -> None:
    store = DirectoryMediaStore(tmp_path / "media")
    media_id = await EspeakSpeech(store).synthesize("acme", "--version -w /tmp/x", "en")
    assert (await store.info("acme", media_id)).size > 1000


async def test_a_missing_binary_is_a_speech_failure(tmp_path: Path) -> None:
    speech = EspeakSpeech(DirectoryMediaStore(tmp_path), binary=str(tmp_path / "no-espeak"))
    with pytest.raises(SpeechFailed):
        await speech.synthesize("acme", "hello", "en")


class NoPrompts:
    """A prompt library with no prompts."""

    async def media_for(self, tenant_id: str, prompt_id: str, language: str) -> str | None:
        """Never a recording."""
        return None


def app_for(store: DirectoryMediaStore, signer: MediaUrlSigner) -> httpx.AsyncClient:
    app = FastAPI()
    app.include_router(media_router(store, signer))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ivr")


async def test_the_switch_fetches_spoken_text_by_signed_url_and_plays_it(tmp_path: Path) -> None:
    store = DirectoryMediaStore(tmp_path / "media")
    signer = MediaUrlSigner(SECRET)

    sounds = SoundResolver(
        signer=signer, base_url="http://ivr", speech=EspeakSpeech(store), prompts=NoPrompts()
    )
    url = await sounds.resolve("acme", Sound(PromptKind.TTS, "Thank you for calling", "en"))
    assert url.startswith("http_cache://http://ivr/media/acme/")
    target = urlsplit(url.removeprefix("http_cache://"))
    async with app_for(store, signer) as client:
        whole = await client.get(f"{target.path}?{target.query}")
        assert whole.status_code == 200
        assert whole.headers["content-type"] == "audio/wav"
        # What the emulator does with an http_cache:// file: read its duration from the header.
        (tmp_path / "fetched.wav").write_bytes(whole.content)
        assert wav_duration(tmp_path / "fetched.wav") > 0.5
        part = await client.get(f"{target.path}?{target.query}", headers={"Range": "bytes=0-43"})
        assert part.status_code == 206
        assert part.content == whole.content[:44]
        assert part.headers["content-range"] == f"bytes 0-43/{len(whole.content)}"


async def test_bad_missing_foreign_and_expired_signatures_are_refused(tmp_path: Path) -> None:
    store = DirectoryMediaStore(tmp_path / "media")
    info = await store.put(
        "acme", MediaKind.PROMPT, "p.wav", b"RIFF....WAVE", content_type="audio/wav"
    )
    signer = MediaUrlSigner(SECRET)
    good = signer.query("acme", info.media_id)
    expired_signer = MediaUrlSigner(SECRET, clock=lambda: time.time() - 10 * 86_400)
    expired = expired_signer.query("acme", info.media_id, ttl_s=60)
    async with app_for(store, signer) as client:
        assert (await client.get(f"/media/acme/{info.media_id}.wav?{good}")).status_code == 200
        assert (await client.get(f"/media/acme/{info.media_id}.wav")).status_code == 400
        tampered = good[:-1] + ("0" if good[-1] != "0" else "1")
        assert (await client.get(f"/media/acme/{info.media_id}.wav?{tampered}")).status_code == 400
        answer = await client.get(f"/media/acme/{info.media_id}.wav?{expired}")
        assert answer.status_code == 400
        assert answer.json()["code"] == "signature_expired"
        # A signature for acme's file does not open another tenant's path.
        assert (await client.get(f"/media/globex/{info.media_id}.wav?{good}")).status_code == 400
        head = await client.head(f"/media/acme/{info.media_id}.wav?{good}")
        assert head.status_code == 200
        assert head.headers["content-length"] == str(info.size)


@pytest.mark.parametrize(("rate", "channels"), [(8000, 1), (22050, 2), (16000, 1)])
def test_any_pcm16_wav_becomes_16k_mono_of_the_same_length(rate: int, channels: int) -> None:
    source = io.BytesIO()
    with wave.open(source, "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(b"\x10\x00\xf0\xff" * channels * rate)  # two seconds
    with wave.open(io.BytesIO(to_freeswitch_wav(source.getvalue())), "rb") as out:
        assert (out.getnchannels(), out.getsampwidth(), out.getframerate()) == (1, 2, OUTPUT_RATE)
        assert out.getnframes() == 2 * OUTPUT_RATE


async def test_the_emulated_switch_fetches_and_times_a_spoken_prompt(tmp_path: Path) -> None:
    store = DirectoryMediaStore(tmp_path / "media")
    signer = MediaUrlSigner(SECRET)
    app = FastAPI()
    app.include_router(media_router(store, signer))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    resolver = MediaResolver(None, tmp_path / "switch-cache")
    try:
        sounds = SoundResolver(
            signer=signer,
            base_url=f"http://127.0.0.1:{port}",
            speech=EspeakSpeech(store),
            prompts=NoPrompts(),
        )
        url = await sounds.resolve("acme", Sound(PromptKind.TTS, "Goodbye", "en"))
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline, "media server did not start"
            await asyncio.sleep(0.05)
        assert 0.2 < await resolver.duration(url) < 10
    finally:
        await resolver.close()
        server.should_exit = True
        await serving
        listener.close()
