"""Media files for the emulator: WAV durations, silent recordings, http_cache:// fetches."""

from __future__ import annotations

import asyncio
import hashlib
import struct
import wave
from pathlib import Path

import httpx


class MediaError(Exception):
    """A file that cannot be found or read."""


def wav_duration(path: Path) -> float:
    """Seconds of audio in a WAV file, from its header."""
    try:
        with wave.open(str(path), "rb") as wav:
            rate = wav.getframerate()
            return wav.getnframes() / rate if rate else 0.0
    except (OSError, EOFError, wave.Error, struct.error) as err:
        raise MediaError(f"{path}: {err}") from err


def write_silence(path: Path, seconds: float, rate: int = 8000) -> None:
    """Write a mono 16-bit WAV of silence of the given length."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = max(0, int(seconds * rate))
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        chunk = b"\x00\x00" * min(frames, rate)
        left = frames
        while left > 0:
            n = min(left, rate)
            wav.writeframes(chunk[: n * 2])
            left -= n


class MediaResolver:
    """Resolves playback paths (local, relative to a media dir, or http_cache://) to durations."""

    def __init__(self, media_dir: Path | None, cache_dir: Path) -> None:
        self.media_dir = media_dir
        self.cache_dir = cache_dir
        self._durations: dict[str, float] = {}
        self._client: httpx.AsyncClient | None = None

    async def duration(self, file: str) -> float:
        """Seconds of audio in `file`; raises MediaError when it cannot be found."""
        cached = self._durations.get(file)
        if cached is not None:
            return cached
        if file.startswith("http_cache://"):
            path = await self._fetch(file[len("http_cache://") :])
        elif file.startswith(("http://", "https://")):
            path = await self._fetch(file)
        else:
            path = self._local(file)
        seconds = await asyncio.to_thread(wav_duration, path)
        self._durations[file] = seconds
        return seconds

    def _local(self, file: str) -> Path:
        path = Path(file)
        if not path.is_absolute() and self.media_dir is not None:
            path = self.media_dir / path
        if not path.is_file():
            raise MediaError(f"{file}: no such file")
        return path

    async def _fetch(self, url: str) -> Path:
        name = hashlib.sha256(url.encode()).hexdigest()[:32] + ".wav"
        target = self.cache_dir / name
        if target.is_file():
            return target
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=10.0, follow_redirects=True)
        try:
            response = await self._client.get(url)
        except httpx.HTTPError as err:
            raise MediaError(f"{url}: {err}") from err
        if response.status_code != 200:
            raise MediaError(f"{url}: HTTP {response.status_code}")
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        target.write_bytes(response.content)
        return target

    async def close(self) -> None:
        """Close the HTTP client."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None
