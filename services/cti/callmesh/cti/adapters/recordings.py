"""Finished recordings move from the switch's recordings directory into the media store."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from pathlib import Path

from callmesh.core.media import MediaKind, MediaStore
from callmesh.proto.v1.call_pb2 import RecordingStopped

log = logging.getLogger(__name__)


def wav_duration_ms(path: Path) -> int:
    """A PCM WAV file's length from its header (0 when it is not one)."""
    try:
        with path.open("rb") as handle:
            header = handle.read(64)
        if header[:4] != b"RIFF" or header[8:12] != b"WAVE":
            return 0
        byte_rate = struct.unpack_from("<I", header, 28)[0]
        data = header.find(b"data")
        if byte_rate <= 0 or data < 0:
            return 0
        size = struct.unpack_from("<I", header, data + 4)[0]
        return int(size * 1000 / byte_rate)
    except (OSError, struct.error):
        return 0


class MediaRecordings:
    """``RecordingArchive``: the file goes into the media store, then off the switch's disk."""

    def __init__(self, store: MediaStore, *, root: Path | None = None) -> None:
        self._store = store
        # When set, only files under this directory are taken (the switch's recordings path).
        self._root = root.resolve() if root is not None else None

    async def archive(
        self, tenant_id: str, call_id: str, recording: RecordingStopped
    ) -> RecordingStopped:
        """Store the file as a recording of the tenant; fill media id, size and duration."""
        path = Path(recording.path)
        resolved = await asyncio.to_thread(path.resolve)
        if self._root is not None and not resolved.is_relative_to(self._root):
            raise ValueError(f"path: {recording.path} is outside the recordings directory")
        data = await asyncio.to_thread(path.read_bytes)
        metadata = {"call_id": call_id, "channel_uuid": recording.channel_uuid}
        if recording.recording_id:
            metadata["recording_id"] = recording.recording_id
        info = await self._store.put(
            tenant_id, MediaKind.RECORDING, path.name, data, metadata=metadata
        )
        out = RecordingStopped()
        out.CopyFrom(recording)
        out.media_id = info.media_id
        out.size_bytes = info.size
        if not out.duration_ms:
            out.duration_ms = await asyncio.to_thread(wav_duration_ms, path)
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(path.unlink)
        log.info(
            "recording archived",
            extra={"tenant_id": tenant_id, "call_id": call_id, "media_id": info.media_id},
        )
        return out
