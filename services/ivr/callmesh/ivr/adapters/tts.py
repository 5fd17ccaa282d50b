"""Text to speech with espeak-ng: 16 kHz mono PCM16 WAVs, made once and kept in the media store."""

from __future__ import annotations

import array
import asyncio
import contextlib
import hashlib
import io
import os
import shutil
import sys
import tempfile
import wave
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from callmesh.core.errors import DomainError, InvalidInput
from callmesh.core.media import MediaKind, MediaStore
from callmesh.proto.subjects import check_tenant_id

__all__ = [
    "OUTPUT_RATE",
    "TEXT_MAX",
    "VOICES",
    "EspeakSpeech",
    "SpeechFailed",
    "to_freeswitch_wav",
    "voice_for",
]

TEXT_MAX = 2000
OUTPUT_RATE = 16_000  # FreeSWITCH plays 8 and 16 kHz PCM16 without a resampler of its own
_TIMEOUT_S = 30.0
_KEY_VERSION = "espeak-v1"

# Flow language codes (lower-cased) -> espeak-ng voices.
VOICES: Mapping[str, str] = MappingProxyType(
    {
        "en": "en",
        "en-gb": "en",
        "en-us": "en-us",
        "zh": "cmn",
        "cmn": "cmn",
        "zh-cn": "cmn",
        "zh-cmn": "cmn",
        "zh-hans": "cmn",
        "zh-tw": "cmn",
        "yue": "yue",
        "zh-yue": "yue",
        "zh-hk": "yue",
    }
)


class SpeechFailed(DomainError):
    """espeak-ng is missing, failed or produced no audio."""

    code = "speech_failed"
    status = 503


def voice_for(language: str) -> str:
    """The espeak-ng voice for a flow language; ``InvalidInput`` naming ``language`` if none."""
    voice = VOICES.get(language.lower()) if isinstance(language, str) else None
    if voice is None:
        raise InvalidInput("language", "must be one of en, zh (Mandarin), yue (Cantonese)")
    return voice


def _find_tools(start: Path) -> Path | None:
    for directory in (start, *start.parents):
        candidate = directory / ".tools" / "espeak"
        if (candidate / "usr" / "bin" / "espeak-ng").is_file():
            return candidate
    return None


def _unpacked_env(tools: Path) -> dict[str, str]:
    """LD_LIBRARY_PATH and ESPEAK_DATA_PATH for an espeak-ng unpacked by ``scripts/setup.sh``."""
    lib_dirs = sorted({str(path.parent) for path in (tools / "usr" / "lib").rglob("*.so*")})
    data = next((tools / "usr" / "lib").rglob("espeak-ng-data"), None)
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = ":".join([*lib_dirs, env.get("LD_LIBRARY_PATH", "")]).rstrip(":")
    if data is not None:
        env["ESPEAK_DATA_PATH"] = str(data.parent)
    return env


def _interpolate(samples: array.array[int], rate: int) -> array.array[int]:
    """Linear interpolation to ``OUTPUT_RATE``, read straight from the array (no copies)."""
    last = len(samples) - 1
    # Going down, a 3-tap low-pass takes the edge off what would alias above the new Nyquist.
    smooth = rate > OUTPUT_RATE

    def at(i: int) -> int:
        if not smooth:
            return samples[i]
        return (samples[max(i - 1, 0)] + 2 * samples[i] + samples[min(i + 1, last)]) // 4

    count = len(samples) * OUTPUT_RATE // rate
    step = rate / OUTPUT_RATE
    out = array.array("h", bytes(2 * count))
    for i in range(count):
        position = i * step
        left = int(position)
        fraction = position - left
        low = at(left)
        out[i] = int(low + (at(min(left + 1, last)) - low) * fraction)
    return out


def _resample(frames: bytes, rate: int, width: int, channels: int) -> bytes:
    """Mono PCM16 at ``OUTPUT_RATE`` (lightly smoothed, linearly interpolated)."""
    if width != 2:
        raise SpeechFailed(f"espeak-ng wrote {8 * width}-bit audio, expected 16-bit")
    samples = array.array("h", frames)
    if sys.byteorder == "big":
        samples.byteswap()
    if channels > 1:
        samples = array.array("h", samples[::channels])
    if rate != OUTPUT_RATE and len(samples) > 1:
        samples = _interpolate(samples, rate)
    if sys.byteorder == "big":
        samples.byteswap()
    return samples.tobytes()


def to_freeswitch_wav(raw: bytes) -> bytes:
    """Any PCM16 WAV as a 16 kHz mono PCM16 WAV."""
    try:
        with wave.open(io.BytesIO(raw), "rb") as source:
            rate, width, channels = (
                source.getframerate(),
                source.getsampwidth(),
                source.getnchannels(),
            )
            frames = source.readframes(source.getnframes())
    except (EOFError, wave.Error) as err:
        raise SpeechFailed(f"espeak-ng wrote no readable WAV: {err}") from err
    pcm = _resample(frames, rate, width, channels)
    out = io.BytesIO()
    with wave.open(out, "wb") as target:
        target.setnchannels(1)
        target.setsampwidth(2)
        target.setframerate(OUTPUT_RATE)
        target.writeframes(pcm)
    return out.getvalue()


class EspeakSpeech:
    """``ports.Speech`` with espeak-ng; each text is spoken once per tenant, then reused.

    The key is a hash of text, voice and output format; the media file carries it in its
    metadata (``tts_key``). A process reads a tenant's TTS listing once, then keeps the index
    itself; concurrent requests for the same text share one synthesis.
    """

    def __init__(
        self,
        media: MediaStore,
        *,
        binary: str | None = None,
        tools_dir: Path | None = None,
        max_processes: int = 4,
    ) -> None:
        self._media = media
        self._binary, self._env = self._locate(binary, tools_dir)
        self._slots = asyncio.Semaphore(max_processes)
        self._index: dict[str, dict[str, str]] = {}  # tenant -> key -> media id
        self._pending: dict[tuple[str, str], asyncio.Task[str]] = {}
        self.runs = 0  # espeak-ng processes started (for tests and metrics)

    @staticmethod
    def _locate(binary: str | None, tools_dir: Path | None) -> tuple[str, dict[str, str] | None]:
        if binary is not None:
            return binary, None
        found = shutil.which("espeak-ng")
        if found is not None:
            return found, None
        tools = tools_dir or _find_tools(Path.cwd()) or _find_tools(Path(__file__).resolve())
        if tools is not None:
            return str(tools / "usr" / "bin" / "espeak-ng"), _unpacked_env(tools)
        return "espeak-ng", None

    @staticmethod
    def key(text: str, voice: str) -> str:
        """The cache key of ``text`` in ``voice``."""
        message = f"{_KEY_VERSION}\n{OUTPUT_RATE}\n{voice}\n{text}".encode()
        return hashlib.sha256(message).hexdigest()

    async def synthesize(self, tenant_id: str, text: str, language: str) -> str:
        """The media id of ``text`` spoken in ``language`` (made once, then cached)."""
        try:
            tenant = check_tenant_id(tenant_id)
        except (TypeError, ValueError) as err:
            raise InvalidInput("tenant_id", "must be a tenant slug", str(err)) from err
        if not isinstance(text, str) or not text.strip():
            raise InvalidInput("text", "must not be empty")
        if len(text) > TEXT_MAX:
            raise InvalidInput("text", f"must be at most {TEXT_MAX} characters")
        voice = voice_for(language)
        key = self.key(text, voice)
        index = await self._tenant_index(tenant)
        if key in index:
            return index[key]
        task = self._pending.get((tenant, key))
        if task is None:
            task = asyncio.create_task(self._make(tenant, key, text, voice))
            self._pending[(tenant, key)] = task
            task.add_done_callback(lambda _: self._pending.pop((tenant, key), None))
        # Shielded: one caller hanging up must not cancel the synthesis the others wait for.
        return await asyncio.shield(task)

    async def _tenant_index(self, tenant: str) -> dict[str, str]:
        index = self._index.get(tenant)
        if index is not None:
            return index
        found: dict[str, str] = {}
        after: str | None = None
        while True:
            page = await self._media.list(tenant, MediaKind.TTS, limit=1000, after=after)
            for info in page:
                if info.metadata.get("tts_key"):
                    found.setdefault(info.metadata["tts_key"], info.media_id)
            if len(page) < 1000:
                break
            after = page[-1].media_id
        return self._index.setdefault(tenant, found)

    async def _make(self, tenant: str, key: str, text: str, voice: str) -> str:
        raw = await self._speak(text, voice)
        wav = await asyncio.to_thread(to_freeswitch_wav, raw)
        info = await self._media.put(
            tenant,
            MediaKind.TTS,
            f"tts-{key[:16]}.wav",
            wav,
            content_type="audio/wav",
            metadata={"tts_key": key, "voice": voice, "text": text[:200]},
        )
        self._index.setdefault(tenant, {})[key] = info.media_id
        return info.media_id

    async def _speak(self, text: str, voice: str) -> bytes:
        async with self._slots:
            with tempfile.TemporaryDirectory(prefix="callmesh-tts-") as work:
                target = Path(work) / "out.wav"
                self.runs += 1
                try:
                    process = await asyncio.create_subprocess_exec(
                        self._binary,
                        "-v",
                        voice,
                        "-w",
                        str(target),
                        "--stdin",
                        stdin=asyncio.subprocess.PIPE,
                        stdout=asyncio.subprocess.DEVNULL,
                        stderr=asyncio.subprocess.PIPE,
                        env=self._env,
                    )
                except OSError as err:
                    raise SpeechFailed(f"cannot run espeak-ng ({self._binary}): {err}") from err
                try:
                    # Text on stdin, never argv: text starting with '-' is not an option.
                    _, errors = await asyncio.wait_for(
                        process.communicate(text.encode("utf-8")), _TIMEOUT_S
                    )
                except (TimeoutError, asyncio.CancelledError):
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
                    await process.wait()
                    raise
                if process.returncode != 0 or not target.is_file():
                    detail = errors.decode("utf-8", "replace").strip()[:300]
                    raise SpeechFailed(f"espeak-ng failed ({process.returncode}): {detail}")
                return await asyncio.to_thread(target.read_bytes)
