"""Media store: prompts, recordings, voicemail and cached speech on disk or in GridFS, over HTTP."""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import hashlib
import hmac
import json
import mimetypes
import os
import re
import secrets
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import IO, Annotated, Any, Protocol
from urllib.parse import quote

from bson.int64 import Int64
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from fastapi.routing import APIRoute
from gridfs.asynchronous import AsyncGridFSBucket
from gridfs.errors import NoFile
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from starlette.exceptions import HTTPException

from callmesh.core.errors import DomainError, InvalidInput, NotFound
from callmesh.core.http import domain_error_response, problem_response, validation_errors
from callmesh.core.settings import PlatformSettings
from callmesh.proto.subjects import check_tenant_id

# ---------------------------------------------------------------------------------------------
# Model


class MediaKind(StrEnum):
    """What a media file is for; also the directory it lives in."""

    PROMPT = "prompt"
    RECORDING = "recording"
    VOICEMAIL = "voicemail"
    TTS = "tts"


@dataclass(frozen=True)
class MediaInfo:
    """A stored file's description; the bytes are read with ``MediaStore.open_range``."""

    media_id: str
    tenant_id: str
    kind: MediaKind
    filename: str
    content_type: str
    size: int
    created_at: datetime
    sha256: str
    # Read-only view; left out of the hash so infos can still go into sets.
    metadata: Mapping[str, str] = field(hash=False)


class CorruptMedia(DomainError):
    """Stored bytes disagree with their record (missing or short chunks, truncated file)."""

    code = "corrupt_media"
    status = 500


class InvalidSignature(DomainError):
    """A signed media URL whose signature does not match its tenant, media id and expiry."""

    code = "invalid_signature"
    status = 400


class SignatureExpired(InvalidSignature):
    """A signed media URL used after its expiry."""

    code = "signature_expired"


class RangeNotSatisfiable(DomainError):
    """A byte range that starts beyond the end of the file."""

    code = "range_not_satisfiable"
    status = 416


# ---------------------------------------------------------------------------------------------
# Validation

# Only letters, digits, '_' and '-': no '.', '/', '\\' or NUL, so an id can never leave its
# tenant's directory nor look like one of the store's own temp or sidecar names.
MEDIA_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_METADATA_KEY_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
# type/subtype plus optional parameters, printable ASCII only: it goes verbatim into a header.
_CONTENT_TYPE_RE = re.compile(
    r"^[A-Za-z0-9!#$&^_.+-]{1,127}/[A-Za-z0-9!#$&^_.+-]{1,127}(;[ -~]*)?$"
)
_FILENAME_MAX_BYTES = 255
_METADATA_MAX_ITEMS = 32
_METADATA_VALUE_MAX = 1024
_LIST_MAX = 1000

# Our own table first: the platform's mimetypes database differs between hosts (audio/x-wav
# here, audio/wav there) and FreeSWITCH maps these exact names back to a file extension.
_AUDIO_TYPES: Mapping[str, str] = MappingProxyType(
    {
        "wav": "audio/wav",
        "mp3": "audio/mpeg",
        "ogg": "audio/ogg",
        "oga": "audio/ogg",
        "opus": "audio/ogg",
        "flac": "audio/flac",
        "m4a": "audio/mp4",
        "aac": "audio/aac",
        "webm": "audio/webm",
        "weba": "audio/webm",
        "au": "audio/basic",
    }
)


def check_media_id(value: str, field_name: str = "media_id") -> str:
    """A media id: 1-64 letters, digits, ``_`` or ``-`` (nothing that could name a path)."""
    if not isinstance(value, str) or not MEDIA_ID_RE.match(value):
        raise InvalidInput(field_name, "must be 1-64 letters, digits, '_' or '-'")
    return value


def _check_tenant(value: str) -> str:
    try:
        return check_tenant_id(value)
    except (TypeError, ValueError) as err:
        raise InvalidInput("tenant_id", "must be a tenant slug", str(err)) from err


def _check_kind(value: MediaKind | str) -> MediaKind:
    try:
        return MediaKind(value)
    except ValueError as err:
        allowed = ", ".join(MediaKind)
        raise InvalidInput("kind", f"must be one of {allowed}") from err


def _check_filename(value: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInput("filename", "must not be empty")
    if len(value.encode("utf-8")) > _FILENAME_MAX_BYTES:
        raise InvalidInput("filename", f"must be at most {_FILENAME_MAX_BYTES} bytes")
    if value in (".", "..") or "/" in value or "\\" in value:
        raise InvalidInput("filename", "must be a plain name, not a path")
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in value):
        raise InvalidInput("filename", "must not contain control characters")
    return value


def _check_metadata(value: Mapping[str, str] | None) -> dict[str, str]:
    if value is None:
        return {}
    if len(value) > _METADATA_MAX_ITEMS:
        raise InvalidInput("metadata", f"must have at most {_METADATA_MAX_ITEMS} entries")
    checked: dict[str, str] = {}
    for key, item in value.items():
        # Keys become MongoDB field names: no '.', no '$'.
        if not isinstance(key, str) or not _METADATA_KEY_RE.match(key):
            raise InvalidInput("metadata", "keys must be 1-64 letters, digits, '_' or '-'")
        if not isinstance(item, str) or len(item) > _METADATA_VALUE_MAX:
            raise InvalidInput("metadata", f"values must be strings of {_METADATA_VALUE_MAX} max")
        checked[key] = item
    return checked


def guess_content_type(filename: str) -> str:
    """The content type a file name implies (audio formats first), else octet-stream."""
    _, dot, extension = filename.rpartition(".")
    if dot and extension.lower() in _AUDIO_TYPES:
        return _AUDIO_TYPES[extension.lower()]
    guessed, _ = mimetypes.guess_type(filename, strict=False)
    return guessed or "application/octet-stream"


def _content_type(filename: str, given: str | None) -> str:
    if given is None:
        return guess_content_type(filename)
    if not isinstance(given, str) or not _CONTENT_TYPE_RE.match(given):
        raise InvalidInput("content_type", "must be a media type such as audio/wav")
    return given


def _check_put(
    tenant_id: str,
    kind: MediaKind | str,
    filename: str,
    content_type: str | None,
    metadata: Mapping[str, str] | None,
) -> tuple[str, MediaKind, str, str, dict[str, str]]:
    """Every argument of a put checked (before anything is written), content type settled."""
    name = _check_filename(filename)
    return (
        _check_tenant(tenant_id),
        _check_kind(kind),
        name,
        _content_type(name, content_type),
        _check_metadata(metadata),
    )


def _check_range(start: int, end_inclusive: int, size: int) -> None:
    if start < 0 or start >= size:
        raise InvalidInput("start", f"must be within 0..{size - 1}")
    if end_inclusive < start or end_inclusive >= size:
        raise InvalidInput("end_inclusive", f"must be within {start}..{size - 1}")


def _check_list_args(kind: MediaKind | str | None, limit: int, after: str | None) -> None:
    if kind is not None:
        _check_kind(kind)
    if not 1 <= limit <= _LIST_MAX:
        raise InvalidInput("limit", f"must be within 1..{_LIST_MAX}")
    if after is not None:
        check_media_id(after, "after")


def new_media_id() -> str:
    """A fresh media id: 12 hex digits of milliseconds, 16 random; sorts by creation time."""
    return f"{time.time_ns() // 1_000_000:012x}{secrets.token_hex(8)}"


def _now() -> datetime:
    # Milliseconds, as BSON keeps them: both backends report the same instant they stored.
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# ---------------------------------------------------------------------------------------------
# The port


class MediaStore(Protocol):
    """Where media files live; every call names the tenant, and ids of others are not found."""

    async def put(
        self,
        tenant_id: str,
        kind: MediaKind | str,
        filename: str,
        data: bytes | AsyncIterable[bytes],
        *,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> MediaInfo:
        """Store a file (streamed, atomically: all or nothing) and return its description."""
        ...

    async def info(self, tenant_id: str, media_id: str) -> MediaInfo:
        """The description of a file; ``NotFound`` if the tenant has no such file."""
        ...

    def open_range(
        self, tenant_id: str, media_id: str, start: int, end_inclusive: int
    ) -> AsyncIterator[bytes]:
        """Bytes ``start..end_inclusive`` of a file, in pieces, reading only what is needed."""
        ...

    async def delete(self, tenant_id: str, media_id: str) -> None:
        """Remove a file; ``NotFound`` if the tenant has no such file."""
        ...

    async def list(
        self,
        tenant_id: str,
        kind: MediaKind | str | None = None,
        limit: int = 100,
        after: str | None = None,
    ) -> builtins.list[MediaInfo]:
        """A page of the tenant's files in media id order; pass the last id as ``after``."""
        ...


_INPUT_SLICE = 1024 * 1024


async def _pieces(data: bytes | AsyncIterable[bytes]) -> AsyncIterator[bytes | memoryview]:
    # Whole bytes go through in slices so both inputs take the same bounded path.
    if isinstance(data, bytes | bytearray | memoryview):
        view = memoryview(data).cast("B")
        for offset in range(0, len(view), _INPUT_SLICE):
            yield view[offset : offset + _INPUT_SLICE]
        return
    async for piece in data:
        if not isinstance(piece, bytes | bytearray | memoryview):
            raise InvalidInput("data", "must yield bytes")
        yield piece


# ---------------------------------------------------------------------------------------------
# Directory backend

_SIDECAR = ".json"
_PART = ".part"


def _info_to_json(info: MediaInfo) -> bytes:
    record = {
        "version": 1,
        "media_id": info.media_id,
        "tenant_id": info.tenant_id,
        "kind": str(info.kind),
        "filename": info.filename,
        "content_type": info.content_type,
        "size": info.size,
        "created_at": info.created_at.isoformat(),
        "sha256": info.sha256,
        "metadata": dict(info.metadata),
    }
    return json.dumps(record, ensure_ascii=False, sort_keys=True).encode("utf-8")


def _info_from_json(raw: bytes, path: Path) -> MediaInfo:
    try:
        record = json.loads(raw)
        return MediaInfo(
            media_id=str(record["media_id"]),
            tenant_id=str(record["tenant_id"]),
            kind=MediaKind(record["kind"]),
            filename=str(record["filename"]),
            content_type=str(record["content_type"]),
            size=int(record["size"]),
            created_at=_utc(datetime.fromisoformat(record["created_at"])),
            sha256=str(record["sha256"]),
            metadata=MappingProxyType({str(k): str(v) for k, v in record["metadata"].items()}),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise CorruptMedia(f"unreadable media record {path.name}") from err


def _fsync_dir(directory: Path) -> None:
    # Makes the renames durable; some filesystems refuse to open or fsync a directory.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class _Hasher(Protocol):
    def update(self, data: bytearray, /) -> None: ...


class _PartFile:
    """One put's temp file; its blocking steps run in order on a worker thread of its own.

    In order, because a cancelled ``to_thread`` call keeps running: the clean-up must queue
    behind it rather than race it (and then find a half-renamed file).
    """

    def __init__(self, final: Path) -> None:
        self.final = final
        self.part = final.with_name(f".{final.name}{_PART}")
        self.sidecar = final.with_name(final.name + _SIDECAR)
        self.sidecar_part = final.with_name(f".{final.name}{_SIDECAR}{_PART}")
        self._handle: IO[bytes] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="media-put")

    async def run(self, step: Callable[..., None], *args: Any) -> None:
        """Run a step after every step submitted before it."""
        await asyncio.get_running_loop().run_in_executor(self._executor, step, *args)

    def shutdown(self) -> None:
        """Let the worker thread end once its queue is empty."""
        self._executor.shutdown(wait=False)

    def open(self) -> None:
        """Create the temp file (exclusively: ids are fresh, a clash is a bug)."""
        self.part.parent.mkdir(parents=True, exist_ok=True)
        self._handle = self.part.open("xb")

    def write(self, data: bytearray, hasher: _Hasher) -> None:
        """Append and hash here, off the event loop (hashlib releases the GIL)."""
        assert self._handle is not None
        self._handle.write(data)
        hasher.update(data)

    def commit(self, info: MediaInfo) -> None:
        """Make bytes and record durable, then publish both."""
        assert self._handle is not None
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()
        with self.sidecar_part.open("xb") as sidecar:
            sidecar.write(_info_to_json(info))
            sidecar.flush()
            os.fsync(sidecar.fileno())
        # Bytes first, record last: the record is the commit point, so whoever sees it sees
        # complete bytes, and a crash in between leaves only an unlisted, unreadable orphan.
        os.replace(self.part, self.final)
        os.replace(self.sidecar_part, self.sidecar)
        _fsync_dir(self.final.parent)

    def discard(self) -> None:
        """Remove every trace of this put, whichever step it failed at."""
        if self._handle is not None:
            self._handle.close()
        for path in (self.sidecar, self.final, self.sidecar_part, self.part):
            path.unlink(missing_ok=True)


class DirectoryMediaStore:
    """Media in ``root/<tenant>/<kind>/<media_id>``, described by ``<media_id>.json`` beside it."""

    def __init__(self, root: Path, *, chunk_size: int = 256 * 1024) -> None:
        self.root = Path(root)
        self._chunk_size = chunk_size

    def _kind_dir(self, tenant_id: str, kind: MediaKind) -> Path:
        return self.root / tenant_id / kind.value

    async def put(
        self,
        tenant_id: str,
        kind: MediaKind | str,
        filename: str,
        data: bytes | AsyncIterable[bytes],
        *,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> MediaInfo:
        """Stream into a temp file, then publish bytes and record with ``os.replace``."""
        tenant, media_kind, name, ctype, user = _check_put(
            tenant_id, kind, filename, content_type, metadata
        )
        media_id = new_media_id()
        part = _PartFile(self._kind_dir(tenant, media_kind) / media_id)
        hasher = hashlib.sha256()
        size = 0
        buffer = bytearray()
        try:
            await part.run(part.open)
            async for piece in _pieces(data):
                buffer += piece
                size += len(piece)
                # Batch small pieces: one thread hop per chunk, not per network packet.
                if len(buffer) >= self._chunk_size:
                    await part.run(part.write, buffer, hasher)
                    buffer = bytearray()
            if buffer:
                await part.run(part.write, buffer, hasher)
            info = MediaInfo(
                media_id=media_id,
                tenant_id=tenant,
                kind=media_kind,
                filename=name,
                content_type=ctype,
                size=size,
                created_at=_now(),
                sha256=hasher.hexdigest(),
                metadata=MappingProxyType(user),
            )
            await part.run(part.commit, info)
        except BaseException:
            # Shielded so a second cancellation cannot stop the clean-up half way.
            await asyncio.shield(part.run(part.discard))
            raise
        finally:
            part.shutdown()
        return info

    def _read_info(self, tenant: str, media_id: str) -> tuple[MediaInfo, Path]:
        for kind in MediaKind:
            path = self._kind_dir(tenant, kind) / media_id
            sidecar = path.with_name(media_id + _SIDECAR)
            try:
                raw = sidecar.read_bytes()
            except FileNotFoundError:
                continue
            info = _info_from_json(raw, sidecar)
            # A record that names another tenant is never shown, whatever put it there.
            if info.tenant_id != tenant or info.media_id != media_id:
                break
            return info, path
        raise NotFound(f"no media {media_id}")

    async def info(self, tenant_id: str, media_id: str) -> MediaInfo:
        """The file's record (``NotFound`` for unknown ids and other tenants' ids alike)."""
        tenant = _check_tenant(tenant_id)
        check_media_id(media_id)
        info, _ = await asyncio.to_thread(self._read_info, tenant, media_id)
        return info

    def _open(self, tenant: str, media_id: str) -> tuple[MediaInfo, int]:
        info, path = self._read_info(tenant, media_id)
        try:
            return info, os.open(path, os.O_RDONLY)
        except FileNotFoundError as err:
            raise NotFound(f"no media {media_id}") from err

    async def open_range(
        self, tenant_id: str, media_id: str, start: int, end_inclusive: int
    ) -> AsyncIterator[bytes]:
        """Read the range with positioned reads, one chunk per thread hop."""
        tenant = _check_tenant(tenant_id)
        check_media_id(media_id)
        info, fd = await asyncio.to_thread(self._open, tenant, media_id)
        try:
            _check_range(start, end_inclusive, info.size)
            offset = start
            while offset <= end_inclusive:
                want = min(self._chunk_size, end_inclusive + 1 - offset)
                piece = await asyncio.to_thread(os.pread, fd, want, offset)
                if len(piece) != want:
                    raise CorruptMedia(f"media {media_id} is shorter than its record")
                offset += want
                yield piece
        finally:
            # Closing a read-only descriptor does no I/O worth a thread hop.
            os.close(fd)

    def _delete(self, tenant: str, media_id: str) -> None:
        _, path = self._read_info(tenant, media_id)
        # Record first: from then on the file is invisible even if removing the bytes fails.
        path.with_name(media_id + _SIDECAR).unlink(missing_ok=True)
        path.unlink(missing_ok=True)

    async def delete(self, tenant_id: str, media_id: str) -> None:
        """Remove the record, then the bytes (readers holding the file open finish reading)."""
        tenant = _check_tenant(tenant_id)
        check_media_id(media_id)
        await asyncio.to_thread(self._delete, tenant, media_id)

    def _list(
        self, tenant: str, kinds: builtins.list[MediaKind], limit: int, after: str | None
    ) -> builtins.list[MediaInfo]:
        candidates: builtins.list[tuple[str, MediaKind]] = []
        for kind in kinds:
            try:
                entries = os.scandir(self._kind_dir(tenant, kind))
            except FileNotFoundError:
                continue
            with entries:
                for entry in entries:
                    media_id, dot_json, rest = entry.name.partition(_SIDECAR)
                    is_record = dot_json and not rest and MEDIA_ID_RE.match(media_id)
                    if is_record and (after is None or media_id > after):
                        candidates.append((media_id, kind))
        candidates.sort()
        page: builtins.list[MediaInfo] = []
        for media_id, kind in candidates:
            if len(page) >= limit:
                break
            sidecar = self._kind_dir(tenant, kind) / (media_id + _SIDECAR)
            try:
                info = _info_from_json(sidecar.read_bytes(), sidecar)
            except FileNotFoundError:
                continue  # deleted while we listed
            if info.tenant_id == tenant:
                page.append(info)
        return page

    async def list(
        self,
        tenant_id: str,
        kind: MediaKind | str | None = None,
        limit: int = 100,
        after: str | None = None,
    ) -> builtins.list[MediaInfo]:
        """A page of the tenant's files in media id (creation) order."""
        tenant = _check_tenant(tenant_id)
        _check_list_args(kind, limit, after)
        kinds = [_check_kind(kind)] if kind is not None else builtins.list(MediaKind)
        return await asyncio.to_thread(self._list, tenant, kinds, limit, after)


# ---------------------------------------------------------------------------------------------
# GridFS backend

# Chunk documents sent per insert and fetched per cursor batch: ~1 MB either way.
_GRIDFS_BATCH = 4


def _gridfs_info(doc: Mapping[str, Any], tenant: str) -> MediaInfo:
    try:
        meta = doc["metadata"]
        info = MediaInfo(
            media_id=str(doc["_id"]),
            tenant_id=str(meta["tenant_id"]),
            kind=MediaKind(meta["kind"]),
            filename=str(doc["filename"]),
            content_type=str(meta["content_type"]),
            size=int(doc["length"]),
            created_at=_utc(doc["uploadDate"]),
            sha256=str(meta["sha256"]),
            metadata=MappingProxyType({str(k): str(v) for k, v in meta.get("user", {}).items()}),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise CorruptMedia(f"unreadable GridFS file document {doc.get('_id')!r}") from err
    if info.tenant_id != tenant:
        raise NotFound(f"no media {info.media_id}")
    return info


class GridFSMediaStore:
    """Media in GridFS, one bucket per tenant (``media.<tenant>``), so tenants are apart by name.

    Files are standard GridFS (any driver's bucket reads them), but chunks are written and read
    here in small batches: PyMongo's upload stream buffers up to 48 MB of chunks before its
    first insert, and its download stream's cursor pulls up to 16 MB after a seek, even for a
    two-byte range.
    """

    def __init__(self, database: AsyncDatabase[Any], *, chunk_size_bytes: int = 255 * 1024) -> None:
        self._db = database
        self._chunk_size = chunk_size_bytes
        self._indexed: set[str] = set()

    @staticmethod
    def bucket_name(tenant_id: str) -> str:
        """The GridFS bucket holding a tenant's media."""
        return f"media.{tenant_id}"

    def _files(self, tenant: str) -> AsyncCollection[Any]:
        return self._db[f"{self.bucket_name(tenant)}.files"]

    def _chunks(self, tenant: str) -> AsyncCollection[Any]:
        return self._db[f"{self.bucket_name(tenant)}.chunks"]

    async def _ensure_indexes(self, tenant: str) -> None:
        if tenant in self._indexed:
            return
        # The two indexes the GridFS spec names (so drivers find them and build nothing), and
        # one for listing by kind in id order.
        await self._chunks(tenant).create_index([("files_id", 1), ("n", 1)], unique=True)
        await self._files(tenant).create_index([("filename", 1), ("uploadDate", 1)])
        await self._files(tenant).create_index([("metadata.kind", 1), ("_id", 1)])
        self._indexed.add(tenant)

    async def put(
        self,
        tenant_id: str,
        kind: MediaKind | str,
        filename: str,
        data: bytes | AsyncIterable[bytes],
        *,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> MediaInfo:
        """Insert chunks in small batches, then the file document, which makes the file exist."""
        tenant, media_kind, name, ctype, user = _check_put(
            tenant_id, kind, filename, content_type, metadata
        )
        await self._ensure_indexes(tenant)
        media_id = new_media_id()
        chunks = self._chunks(tenant)
        hasher = hashlib.sha256()
        size = 0
        number = 0
        buffer = bytearray()
        batch: builtins.list[dict[str, Any]] = []
        try:
            async for piece in _pieces(data):
                hasher.update(piece)
                size += len(piece)
                buffer += piece
                while len(buffer) >= self._chunk_size:
                    batch.append(
                        {
                            "files_id": media_id,
                            "n": number,
                            "data": bytes(buffer[: self._chunk_size]),
                        }
                    )
                    number += 1
                    del buffer[: self._chunk_size]
                    if len(batch) >= _GRIDFS_BATCH:
                        await chunks.insert_many(batch)
                        batch = []
            if buffer:
                batch.append({"files_id": media_id, "n": number, "data": bytes(buffer)})
            if batch:
                await chunks.insert_many(batch)
            created = _now()
            sha256 = hasher.hexdigest()
            await self._files(tenant).insert_one(
                {
                    "_id": media_id,
                    "length": Int64(size),
                    "chunkSize": self._chunk_size,
                    "uploadDate": created,
                    "filename": name,
                    "metadata": {
                        "tenant_id": tenant,
                        "kind": media_kind.value,
                        "content_type": ctype,
                        "sha256": sha256,
                        "user": user,
                    },
                }
            )
        except BaseException:
            # Shielded: a cancelled upload still removes its chunks (and a file document the
            # server may have written before the connection dropped).
            await asyncio.shield(self._discard(tenant, media_id))
            raise
        return MediaInfo(
            media_id=media_id,
            tenant_id=tenant,
            kind=media_kind,
            filename=name,
            content_type=ctype,
            size=size,
            created_at=created,
            sha256=sha256,
            metadata=MappingProxyType(user),
        )

    async def _discard(self, tenant: str, media_id: str) -> None:
        await self._files(tenant).delete_one({"_id": media_id})
        await self._chunks(tenant).delete_many({"files_id": media_id})

    async def _file_doc(self, tenant: str, media_id: str) -> Mapping[str, Any]:
        doc: Mapping[str, Any] | None = await self._files(tenant).find_one({"_id": media_id})
        if doc is None:
            raise NotFound(f"no media {media_id}")
        return doc

    async def info(self, tenant_id: str, media_id: str) -> MediaInfo:
        """The file's record from its bucket's file document."""
        tenant = _check_tenant(tenant_id)
        check_media_id(media_id)
        return _gridfs_info(await self._file_doc(tenant, media_id), tenant)

    async def open_range(
        self, tenant_id: str, media_id: str, start: int, end_inclusive: int
    ) -> AsyncIterator[bytes]:
        """Fetch only the chunks covering the range, a few per round trip, checking each one."""
        tenant = _check_tenant(tenant_id)
        check_media_id(media_id)
        doc = await self._file_doc(tenant, media_id)
        info = _gridfs_info(doc, tenant)
        _check_range(start, end_inclusive, info.size)
        chunk_size = int(doc["chunkSize"])
        first, last = start // chunk_size, end_inclusive // chunk_size
        last_of_file = (info.size - 1) // chunk_size
        cursor = self._chunks(tenant).find(
            {"files_id": media_id, "n": {"$gte": first, "$lte": last}},
            projection={"_id": 0, "n": 1, "data": 1},
            sort=[("n", 1)],
            batch_size=_GRIDFS_BATCH,
        )
        expected = first
        try:
            async for chunk in cursor:
                data = bytes(chunk["data"])
                whole = chunk_size if expected < last_of_file else info.size - expected * chunk_size
                if chunk["n"] != expected or len(data) != whole:
                    raise CorruptMedia(f"media {media_id}: chunk {expected} missing or truncated")
                low = start - expected * chunk_size if expected == first else 0
                high = end_inclusive - expected * chunk_size + 1 if expected == last else whole
                expected += 1
                yield data[low:high]
            if expected != last + 1:
                raise CorruptMedia(f"media {media_id}: chunk {expected} missing")
        finally:
            await cursor.close()

    async def delete(self, tenant_id: str, media_id: str) -> None:
        """Delete the file document, then its chunks (through the standard bucket)."""
        tenant = _check_tenant(tenant_id)
        check_media_id(media_id)
        bucket = AsyncGridFSBucket(self._db, bucket_name=self.bucket_name(tenant))
        try:
            await bucket.delete(media_id)
        except NoFile as err:
            raise NotFound(f"no media {media_id}") from err

    async def list(
        self,
        tenant_id: str,
        kind: MediaKind | str | None = None,
        limit: int = 100,
        after: str | None = None,
    ) -> builtins.list[MediaInfo]:
        """A page of the tenant's files in media id (creation) order."""
        tenant = _check_tenant(tenant_id)
        _check_list_args(kind, limit, after)
        query: dict[str, Any] = {}
        if kind is not None:
            query["metadata.kind"] = _check_kind(kind).value
        if after is not None:
            query["_id"] = {"$gt": after}
        cursor = self._files(tenant).find(query, sort=[("_id", 1)], limit=limit)
        return [_gridfs_info(doc, tenant) async for doc in cursor]


def media_store_from_settings(
    settings: PlatformSettings, database: AsyncDatabase[Any] | None
) -> MediaStore:
    """The store the settings choose: a directory tree (default) or GridFS in ``database``."""
    if settings.media_backend == "gridfs":
        if database is None:
            raise ValueError("media_backend 'gridfs' needs a database")
        return GridFSMediaStore(database)
    return DirectoryMediaStore(settings.media_dir)


# ---------------------------------------------------------------------------------------------
# Signed URLs

_EXP_RE = re.compile(r"^[0-9]{1,12}$")
_SIG_RE = re.compile(r"^[0-9a-fA-F]{64}$")
_MIN_SECRET = 16


def media_path(tenant_id: str, media_id: str) -> str:
    """The HTTP path of a media file."""
    return f"/v1/t/{tenant_id}/media/{media_id}"


class MediaUrlSigner:
    """Signs media URLs for clients that cannot send a bearer token (FreeSWITCH's http_cache)."""

    def __init__(self, secret: bytes, *, clock: Callable[[], float] = time.time) -> None:
        if len(secret) < _MIN_SECRET:
            raise ValueError(f"media URL secret: must be at least {_MIN_SECRET} bytes")
        self._secret = secret
        self._clock = clock

    def signature(self, tenant_id: str, media_id: str, expires: int) -> str:
        """Hex HMAC-SHA256 over tenant, media id and expiry (newline-separated, unambiguous)."""
        message = f"callmesh-media-v1\n{tenant_id}\n{media_id}\n{expires}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def expires(self, ttl_s: int) -> int:
        """An expiry at least ``ttl_s`` away, rounded up to a multiple of ``ttl_s``.

        Rounding makes every URL for a file the same within a window, so FreeSWITCH's cache
        (keyed by the whole URL) keeps hitting instead of fetching again on every call.
        """
        if ttl_s < 1:
            raise ValueError("ttl_s: must be at least 1 second")
        return (int(self._clock()) // ttl_s + 2) * ttl_s

    def query(self, tenant_id: str, media_id: str, *, ttl_s: int = 3600) -> str:
        """``exp=<unix>&sig=<hex>`` for the file's path."""
        tenant = _check_tenant(tenant_id)
        check_media_id(media_id)
        expires = self.expires(ttl_s)
        return f"exp={expires}&sig={self.signature(tenant, media_id, expires)}"

    def url(self, base_url: str, tenant_id: str, media_id: str, *, ttl_s: int = 3600) -> str:
        """The full signed URL under ``base_url`` (prefix ``http_cache://`` for FreeSWITCH)."""
        query = self.query(tenant_id, media_id, ttl_s=ttl_s)
        return f"{base_url.rstrip('/')}{media_path(tenant_id, media_id)}?{query}"

    def verify(self, tenant_id: str, media_id: str, exp: str, sig: str) -> None:
        """Accept, or raise ``InvalidSignature``/``SignatureExpired`` (constant-time compare)."""
        if not _EXP_RE.match(exp) or not _SIG_RE.match(sig):
            raise InvalidSignature("malformed media URL signature")
        expected = self.signature(tenant_id, media_id, int(exp))
        if not hmac.compare_digest(expected, sig.lower()):
            raise InvalidSignature("media URL signature does not match")
        if int(exp) <= self._clock():
            raise SignatureExpired("media URL signature has expired")


def media_url_signer_from_settings(settings: PlatformSettings) -> MediaUrlSigner | None:
    """A signer from ``media_url_secret``, or None when no secret is configured."""
    if settings.media_url_secret is None:
        return None
    return MediaUrlSigner(settings.media_url_secret.get_secret_value().encode("utf-8"))


# ---------------------------------------------------------------------------------------------
# HTTP

# Media is write-once under its id, so clients and FreeSWITCH (which reads only max-age) may
# keep it; private because it is one tenant's data behind credentials.
CACHE_CONTROL = "private, max-age=31536000, immutable"
_MAX_RANGE_DIGITS = 30
_ETAG_RE = re.compile(r'(?:W/)?"([^"]*)"')


@dataclass(frozen=True)
class ByteRange:
    """An inclusive byte range resolved against a file's size."""

    start: int
    end: int

    @property
    def length(self) -> int:
        """How many bytes the range holds."""
        return self.end - self.start + 1


def parse_byte_range(header: str, size: int) -> ByteRange | None:
    """RFC 9110 ``Range`` for a file of ``size`` bytes: a range, None to ignore, or 416.

    None (serve the whole file) for anything malformed, another unit, or several ranges: the RFC
    lets a server ignore Range, and multipart/byteranges buys nothing for audio players, which
    ask for one range at a time. ``RangeNotSatisfiable`` when the one range starts past the end.
    """
    unit, equals, specs = header.partition("=")
    # No whitespace around '=' in the grammar; OWS is allowed only around the list's commas.
    if not equals or unit.lower() != "bytes":
        return None
    parts = [part.strip() for part in specs.split(",") if part.strip()]
    if len(parts) != 1:
        return None
    first, dash, last = parts[0].partition("-")
    if not dash or (first and not first.isdigit()) or (last and not last.isdigit()):
        return None
    if len(first) > _MAX_RANGE_DIGITS or len(last) > _MAX_RANGE_DIGITS or not (first or last):
        return None
    if not first:
        suffix = int(last)
        if suffix == 0:
            raise RangeNotSatisfiable("empty suffix range")
        if size == 0:
            # Satisfiable by the RFC, but no Content-Range can describe zero bytes: send all.
            return None
        return ByteRange(max(0, size - suffix), size - 1)
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        raise RangeNotSatisfiable(f"range starts at {start}, file has {size} bytes")
    end = min(int(last), size - 1) if last else size - 1
    return ByteRange(start, end)


def _http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return _utc(parsedate_to_datetime(value))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _not_modified(request: Request, etag: str, modified: datetime) -> bool:
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        # Weak comparison, as RFC 9110 asks for If-None-Match.
        if if_none_match.strip() == "*":
            return True
        return etag.strip('"') in _ETAG_RE.findall(if_none_match)
    since = _http_date(request.headers.get("if-modified-since"))
    return since is not None and modified <= since


def _if_range_holds(value: str | None, etag: str, modified: datetime) -> bool:
    if value is None:
        return True
    value = value.strip()
    if value.startswith(('"', "W/")):
        # Strong comparison: a weak tag never matches, as RFC 9110 asks for If-Range.
        return value == etag
    return _http_date(value) == modified


def content_disposition(filename: str) -> str:
    """``inline`` with an ASCII-safe quoted name and the exact name in RFC 8187 form."""
    fallback = "".join(
        char if 0x20 <= ord(char) < 0x7F and char not in '"\\%' else "_" for char in filename
    )
    return f"inline; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _problem(
    status: int, code: str, detail: str, headers: Mapping[str, str] | None = None, **extra: Any
) -> Response:
    # no-store: an error (404 is cacheable by default) must not outlive its cause.
    return problem_response(
        status, code, detail, headers={"Cache-Control": "no-store", **(headers or {})}, **extra
    )


_HTTP_CODES: Mapping[int, str] = MappingProxyType(
    {401: "unauthenticated", 403: "forbidden", 404: "not_found"}
)


async def _media_response(request: Request, store: MediaStore, info: MediaInfo) -> Response:
    etag = f'"{info.sha256}"'
    modified = info.created_at.replace(microsecond=0)
    validators = {
        "ETag": etag,
        "Last-Modified": format_datetime(modified, usegmt=True),
        "Cache-Control": CACHE_CONTROL,
    }
    if _not_modified(request, etag, modified):
        return Response(status_code=304, headers=validators)
    headers = {
        **validators,
        "Accept-Ranges": "bytes",
        "Content-Type": info.content_type,
        "Content-Disposition": content_disposition(info.filename),
        # Uploaded bytes are served from our origin: never let a browser run them as a page.
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
    }
    byte_range: ByteRange | None = None
    range_header = request.headers.get("range")
    # Range (and If-Range) apply to GET only; RFC 9110 has a server ignore them on HEAD.
    if (
        request.method == "GET"
        and range_header is not None
        and _if_range_holds(request.headers.get("if-range"), etag, modified)
    ):
        try:
            byte_range = parse_byte_range(range_header, info.size)
        except RangeNotSatisfiable as err:
            return _problem(
                416,
                err.code,
                err.message,
                {"Content-Range": f"bytes */{info.size}", "Accept-Ranges": "bytes"},
            )
    if byte_range is None:
        status, start, end = 200, 0, info.size - 1
    else:
        status, start, end = 206, byte_range.start, byte_range.end
        headers["Content-Range"] = f"bytes {start}-{end}/{info.size}"
    length = end - start + 1
    headers["Content-Length"] = str(length)
    if request.method == "HEAD" or length == 0:
        return Response(status_code=status, headers=headers)
    return StreamingResponse(
        store.open_range(info.tenant_id, info.media_id, start, end),
        status_code=status,
        headers=headers,
    )


def media_router(
    store: MediaStore, signer: MediaUrlSigner | None, authorize: Callable[..., Any]
) -> APIRouter:
    """GET/HEAD ``/v1/t/{tenant}/media/{media_id}``: a valid signature or ``authorize`` admits.

    A request carrying ``sig`` is judged by its signature alone (400 when it is bad) and never
    reaches ``authorize``, so FreeSWITCH needs no token; any other goes through ``authorize``.
    Errors, including those ``authorize`` raises, are answered as problem+json.
    """

    async def serve(request: Request, tenant: str, media_id: str) -> Response:
        info = await store.info(tenant, media_id)
        return await _media_response(request, store, info)

    class MediaRoute(APIRoute):
        """Chooses signature or dependency before FastAPI resolves the dependency."""

        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            """The dependency-resolving handler, wrapped to admit signed requests first."""
            authorized = super().get_route_handler()

            async def handle(request: Request) -> Response:
                try:
                    if signer is not None and "sig" in request.query_params:
                        tenant = str(request.path_params["tenant"])
                        media_id = str(request.path_params["media_id"])
                        signer.verify(
                            tenant,
                            media_id,
                            request.query_params.get("exp", ""),
                            request.query_params["sig"],
                        )
                        return await serve(request, tenant, media_id)
                    return await authorized(request)
                except DomainError as err:
                    response = domain_error_response(err)
                    response.headers["Cache-Control"] = "no-store"
                    return response
                except HTTPException as err:
                    code = _HTTP_CODES.get(err.status_code, "http_error")
                    return _problem(err.status_code, code, str(err.detail), err.headers)
                except RequestValidationError as err:
                    errors = validation_errors(err.errors())
                    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
                    return _problem(422, "invalid_input", detail, errors=errors)

            return handle

    router = APIRouter(route_class=MediaRoute)

    async def get_media(
        request: Request,
        tenant: str,
        media_id: str,
        exp: Annotated[str | None, Query(description="signed URL: expiry, unix seconds")] = None,
        sig: Annotated[str | None, Query(description="signed URL: hex HMAC-SHA256")] = None,
    ) -> Response:
        return await serve(request, tenant, media_id)

    router.add_api_route(
        media_path("{tenant}", "{media_id}"),
        get_media,
        methods=["GET", "HEAD"],
        dependencies=[Depends(authorize)],
        response_class=Response,
        name="get_media",
        summary="A media file, whole or a byte range",
        responses={
            206: {"description": "the requested byte range"},
            304: {"description": "not modified"},
            416: {"description": "range not satisfiable"},
        },
    )
    return router
