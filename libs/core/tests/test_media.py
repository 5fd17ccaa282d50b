"""The media store on both backends (a directory, GridFS on a real FerretDB) and over HTTP."""

from __future__ import annotations

import hashlib
import random
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from fastapi import FastAPI, Header
from gridfs.asynchronous import AsyncGridFSBucket
from pydantic import SecretStr
from pymongo import AsyncMongoClient, monitoring
from pymongo.asynchronous.database import AsyncDatabase

from callmesh.core.errors import Forbidden, InvalidInput, NotFound, Unauthenticated
from callmesh.core.media import (
    CACHE_CONTROL,
    ByteRange,
    DirectoryMediaStore,
    GridFSMediaStore,
    InvalidSignature,
    MediaInfo,
    MediaKind,
    MediaStore,
    MediaUrlSigner,
    RangeNotSatisfiable,
    SignatureExpired,
    content_disposition,
    guess_content_type,
    media_path,
    media_router,
    media_store_from_settings,
    media_url_signer_from_settings,
    parse_byte_range,
)
from callmesh.core.settings import PlatformSettings

# Spans several GridFS chunks (255 KiB) and directory read chunks (256 KiB).
FILE_SIZE = 700_001
SECRET = b"test-media-url-secret-0123456789"
NOW = 1_900_000_000.0


def noise(size: int, seed: int = 7) -> bytes:
    """Deterministic bytes that do not compress or repeat."""
    return random.Random(seed).randbytes(size)


async def stream_of(size: int, piece: int, seed: int = 7) -> AsyncIterator[bytes]:
    """``size`` deterministic bytes in pieces of ``piece``, made as they are asked for."""
    rng = random.Random(seed)
    sent = 0
    while sent < size:
        part = rng.randbytes(min(piece, size - sent))
        sent += len(part)
        yield part


async def read_all(chunks: AsyncIterator[bytes]) -> bytes:
    """Everything an iterator yields, joined."""
    return b"".join([chunk async for chunk in chunks])


@dataclass
class Backend:
    """A store under test and a way to see what it left in storage for a tenant."""

    name: str
    store: MediaStore
    leftovers: Callable[[str], Awaitable[list[str]]]


@pytest.fixture(params=["directory", "gridfs"])
async def backend(
    request: pytest.FixtureRequest, tmp_path: Path, mongodb_server_uri: str, test_database: str
) -> AsyncIterator[Backend]:
    """Each behaviour test runs against a directory tree and against GridFS on FerretDB."""
    if request.param == "directory":
        root = tmp_path / "media"

        async def files_under(tenant: str) -> list[str]:
            return sorted(
                str(p.relative_to(root)) for p in (root / tenant).rglob("*") if p.is_file()
            )

        yield Backend("directory", DirectoryMediaStore(root), files_under)
        return
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_server_uri)
    database = client[test_database]

    async def documents_of(tenant: str) -> list[str]:
        found: list[str] = []
        for collection in ("files", "chunks"):
            async for doc in database[f"media.{tenant}.{collection}"].find({}, {"_id": 1}):
                found.append(f"{collection}:{doc['_id']}")
        return found

    try:
        yield Backend("gridfs", GridFSMediaStore(database), documents_of)
    finally:
        await client.close()


@pytest.fixture
def store(backend: Backend) -> MediaStore:
    return backend.store


# --- store behaviour, both backends ---------------------------------------------------------


async def test_put_info_list_and_delete_round_trip(store: MediaStore) -> None:
    data = noise(FILE_SIZE)
    info = await store.put(
        "acme",
        MediaKind.PROMPT,
        "welcome.wav",
        data,
        metadata={"language": "en", "voice": "anna"},
    )
    assert info.tenant_id == "acme"
    assert info.kind is MediaKind.PROMPT
    assert info.filename == "welcome.wav"
    assert info.content_type == "audio/wav"
    assert info.size == len(data)
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert info.created_at.tzinfo is not None
    assert abs(info.created_at - datetime.now(UTC)) < timedelta(minutes=5)
    assert dict(info.metadata) == {"language": "en", "voice": "anna"}

    assert await store.info("acme", info.media_id) == info
    assert await store.list("acme") == [info]
    assert await read_all(store.open_range("acme", info.media_id, 0, info.size - 1)) == data

    await store.delete("acme", info.media_id)
    with pytest.raises(NotFound):
        await store.info("acme", info.media_id)
    with pytest.raises(NotFound):
        await read_all(store.open_range("acme", info.media_id, 0, 0))
    with pytest.raises(NotFound):
        await store.delete("acme", info.media_id)
    assert await store.list("acme") == []


async def test_put_streams_an_async_generator_and_computes_size_and_sha256(
    store: MediaStore,
) -> None:
    size = 5 * 1024 * 1024 + 13
    expected = await read_all(stream_of(size, 65_537))

    info = await store.put("acme", "recording", "call-1.wav", stream_of(size, 65_537))

    assert info.size == size
    assert info.sha256 == hashlib.sha256(expected).hexdigest()
    tail = await read_all(store.open_range("acme", info.media_id, size - 70_000, size - 1))
    assert tail == expected[-70_000:]


async def test_streaming_put_holds_a_bounded_amount_in_memory(store: MediaStore) -> None:
    size = 24 * 1024 * 1024
    tracemalloc.start()
    try:
        info = await store.put("acme", "recording", "long-call.wav", stream_of(size, 64 * 1024))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.size == size
    assert peak < 6 * 1024 * 1024, f"peak {peak} bytes while storing {size}"


async def test_empty_files_are_stored(store: MediaStore) -> None:
    info = await store.put("acme", "tts", "silence.wav", b"")
    assert info.size == 0
    assert info.sha256 == hashlib.sha256(b"").hexdigest()
    assert await store.info("acme", info.media_id) == info


async def test_content_type_is_guessed_from_the_filename_unless_given(store: MediaStore) -> None:
    mp3 = await store.put("acme", "prompt", "Hold-Music.MP3", b"ID3")
    ogg = await store.put("acme", "prompt", "hold.ogg", b"OggS")
    given = await store.put("acme", "prompt", "hold", b"RIFF", content_type="audio/x-wav")
    unknown = await store.put("acme", "prompt", "blob", b"?")
    assert (mp3.content_type, ogg.content_type) == ("audio/mpeg", "audio/ogg")
    assert given.content_type == "audio/x-wav"
    assert unknown.content_type == "application/octet-stream"
    with pytest.raises(InvalidInput) as caught:
        await store.put("acme", "prompt", "x.wav", b"", content_type="text/html\r\nX-Evil: 1")
    assert caught.value.field == "content_type"


@pytest.mark.parametrize(
    ("start", "end"),
    [
        pytest.param(0, 99, id="start"),
        pytest.param(261_000, 262_000, id="middle-across-a-chunk-boundary"),
        pytest.param(300_000, 600_000, id="middle-spanning-chunks"),
        pytest.param(FILE_SIZE - 100, FILE_SIZE - 1, id="end"),
        pytest.param(FILE_SIZE - 1, FILE_SIZE - 1, id="last-byte"),
        pytest.param(12_345, 12_345, id="single-byte"),
        pytest.param(0, FILE_SIZE - 1, id="whole"),
    ],
)
async def test_range_reads_return_exactly_the_requested_bytes(
    store: MediaStore, start: int, end: int
) -> None:
    data = noise(FILE_SIZE)
    info = await store.put("acme", "recording", "call.wav", data)
    got = await read_all(store.open_range("acme", info.media_id, start, end))
    assert got == data[start : end + 1]


async def test_range_reads_outside_the_file_are_refused(store: MediaStore) -> None:
    info = await store.put("acme", "recording", "call.wav", b"0123456789")
    for start, end, field in [(10, 10, "start"), (-1, 3, "start"), (5, 4, "end_inclusive")]:
        with pytest.raises(InvalidInput) as caught:
            await read_all(store.open_range("acme", info.media_id, start, end))
        assert caught.value.field == field
    with pytest.raises(InvalidInput):
        await read_all(store.open_range("acme", info.media_id, 0, 10))


async def test_another_tenants_media_is_not_found_under_this_tenant(store: MediaStore) -> None:
    theirs = await store.put("globex", "voicemail", "secret.wav", b"globex only")
    never = "0000000000000000000000000000"
    for media_id in (theirs.media_id, never):
        with pytest.raises(NotFound) as caught:
            await store.info("acme", media_id)
        assert caught.value.code == "not_found"
        with pytest.raises(NotFound):
            await read_all(store.open_range("acme", media_id, 0, 0))
        with pytest.raises(NotFound):
            await store.delete("acme", media_id)
    assert await store.info("globex", theirs.media_id) == theirs
    assert await read_all(store.open_range("globex", theirs.media_id, 0, 10)) == b"globex only"


async def test_a_tenants_list_never_shows_another_tenants_files(store: MediaStore) -> None:
    ours = [await store.put("acme", "prompt", f"p{i}.wav", b"a") for i in range(3)]
    await store.put("globex", "prompt", "g.wav", b"g")
    await store.put("acme-2", "prompt", "g.wav", b"g")
    assert await store.list("acme") == ours
    assert await store.list("initech") == []


async def test_list_pages_by_cursor_in_a_stable_order_and_filters_by_kind(
    store: MediaStore,
) -> None:
    kinds = [MediaKind.PROMPT, MediaKind.RECORDING, MediaKind.VOICEMAIL, MediaKind.TTS] * 2
    stored = [await store.put("acme", kind, f"{i}.wav", b"x") for i, kind in enumerate(kinds)]
    everything = sorted(stored, key=lambda info: info.media_id)

    pages: list[list[MediaInfo]] = []
    after: str | None = None
    while page := await store.list("acme", limit=3, after=after):
        pages.append(page)
        after = page[-1].media_id
    assert [len(page) for page in pages] == [3, 3, 2]
    assert [info for page in pages for info in page] == everything
    assert await store.list("acme") == everything

    recordings = await store.list("acme", kind="recording")
    assert recordings == [info for info in everything if info.kind is MediaKind.RECORDING]
    assert await store.list("acme", kind="recording", after=recordings[0].media_id) == [
        recordings[1]
    ]


@pytest.mark.parametrize(
    "media_id",
    ["..", "../globex/prompt/x", "a/b", "a\\b", "a\x00b", ".hidden", "x" * 65, "", "é"],
)
async def test_media_ids_that_could_leave_the_tenant_are_refused(
    store: MediaStore, media_id: str
) -> None:
    for attempt in (
        store.info("acme", media_id),
        read_all(store.open_range("acme", media_id, 0, 0)),
        store.delete("acme", media_id),
    ):
        with pytest.raises(InvalidInput) as caught:
            await attempt
        assert caught.value.field == "media_id"
    with pytest.raises(InvalidInput) as caught:
        await store.list("acme", after=media_id)
    assert caught.value.field == "after"


@pytest.mark.parametrize(
    "filename", ["..", ".", "../../etc/passwd", "a/b.wav", "a\\b.wav", "a\x00.wav", "x" * 256, ""]
)
async def test_unsafe_filenames_are_refused_and_nothing_is_stored(
    backend: Backend, filename: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        await backend.store.put("acme", "prompt", filename, b"data")
    assert caught.value.field == "filename"
    assert await backend.leftovers("acme") == []


@pytest.mark.parametrize("tenant", ["", "ACME", "../acme", "acme/x", "node", "a" * 49])
async def test_invalid_tenant_ids_are_refused(store: MediaStore, tenant: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        await store.put(tenant, "prompt", "x.wav", b"data")
    assert caught.value.field == "tenant_id"
    with pytest.raises(InvalidInput):
        await store.list(tenant)
    with pytest.raises(InvalidInput):
        await store.info(tenant, "abc")


async def test_bad_kind_metadata_and_limit_are_refused_naming_the_field(store: MediaStore) -> None:
    cases: list[tuple[Awaitable[object], str]] = [
        (store.put("acme", "video", "x.wav", b""), "kind"),
        (store.put("acme", "prompt", "x.wav", b"", metadata={"a.b": "c"}), "metadata"),
        (store.put("acme", "prompt", "x.wav", b"", metadata={"$where": "c"}), "metadata"),
        (store.list("acme", limit=0), "limit"),
        (store.list("acme", kind="video"), "kind"),
    ]
    for attempt, field in cases:
        with pytest.raises(InvalidInput) as caught:
            await attempt
        assert caught.value.field == field


async def test_a_failed_put_leaves_nothing_behind(backend: Backend) -> None:
    async def caller_hangs_up() -> AsyncIterator[bytes]:
        async for piece in stream_of(1_000_000, 100_000):
            yield piece
        raise ConnectionResetError("upload interrupted")

    with pytest.raises(ConnectionResetError):
        await backend.store.put("acme", "recording", "call.wav", caller_hangs_up())
    assert await backend.store.list("acme") == []
    assert await backend.leftovers("acme") == []


async def test_a_put_whose_source_yields_non_bytes_is_refused_and_leaves_nothing(
    backend: Backend,
) -> None:
    async def wrong() -> AsyncIterator[Any]:
        yield b"fine"
        yield "not bytes"

    with pytest.raises(InvalidInput) as caught:
        await backend.store.put("acme", "recording", "call.wav", wrong())
    assert caught.value.field == "data"
    assert await backend.leftovers("acme") == []


# --- backend specifics ----------------------------------------------------------------------


async def test_directory_store_keeps_bytes_and_record_under_tenant_and_kind(
    tmp_path: Path,
) -> None:
    store = DirectoryMediaStore(tmp_path)
    info = await store.put("acme", "voicemail", "vm.wav", b"hello")
    folder = tmp_path / "acme" / "voicemail"
    assert sorted(p.name for p in folder.iterdir()) == [info.media_id, f"{info.media_id}.json"]
    assert (folder / info.media_id).read_bytes() == b"hello"


async def test_directory_store_ignores_bytes_without_a_record(tmp_path: Path) -> None:
    store = DirectoryMediaStore(tmp_path)
    info = await store.put("acme", "prompt", "a.wav", b"a")
    (tmp_path / "acme" / "prompt" / f"{info.media_id}.json").unlink()
    with pytest.raises(NotFound):
        await store.info("acme", info.media_id)
    assert await store.list("acme") == []


async def test_gridfs_store_keeps_each_tenant_in_its_own_standard_bucket(
    mongodb_server_uri: str, test_database: str
) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_server_uri)
    try:
        database: AsyncDatabase[dict[str, Any]] = client[test_database]
        store = GridFSMediaStore(database)
        data = noise(FILE_SIZE)
        info = await store.put("acme", "recording", "call.wav", data, metadata={"call": "c1"})
        await store.put("globex", "recording", "call.wav", b"other")
        names = set(await database.list_collection_names())
        assert {"media.acme.files", "media.acme.chunks", "media.globex.files"} <= names

        doc = await database["media.acme.files"].find_one({"_id": info.media_id})
        assert doc is not None
        assert doc["metadata"] == {
            "tenant_id": "acme",
            "kind": "recording",
            "content_type": "audio/wav",
            "sha256": info.sha256,
            "user": {"call": "c1"},
        }
        # Any driver's GridFS bucket reads what we wrote, seeking included.
        stream = await AsyncGridFSBucket(database, bucket_name="media.acme").open_download_stream(
            info.media_id
        )
        assert stream.length == FILE_SIZE
        await stream.seek(500_000)
        assert await stream.read(1000) == data[500_000:501_000]
        await stream.close()
    finally:
        await client.close()


class ChunkCounter(monitoring.CommandListener):
    """Counts the GridFS chunk documents the server returns (a real pymongo listener)."""

    def __init__(self) -> None:
        self.chunks = 0
        self._chunk_requests: set[int] = set()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        # find names its collection under "find", getMore under "collection".
        key = "find" if event.command_name == "find" else "collection"
        on_chunks = str(event.command.get(key, "")).endswith(".chunks")
        if event.command_name in ("find", "getMore") and on_chunks:
            self._chunk_requests.add(event.request_id)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        if event.request_id in self._chunk_requests:
            cursor = event.reply.get("cursor", {})
            self.chunks += len(cursor.get("firstBatch", cursor.get("nextBatch", [])))

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self._chunk_requests.discard(event.request_id)


async def test_gridfs_range_reads_fetch_only_the_chunks_covering_the_range(
    mongodb_server_uri: str, test_database: str
) -> None:
    counter = ChunkCounter()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        mongodb_server_uri, event_listeners=[counter]
    )
    try:
        store = GridFSMediaStore(client[test_database])
        data = noise(4 * 1024 * 1024)
        info = await store.put("acme", "recording", "call.wav", data)
        counter.chunks = 0
        assert (
            await read_all(store.open_range("acme", info.media_id, 3_000_000, 3_000_001))
            == (data[3_000_000:3_000_002])
        )
        assert counter.chunks == 1
        counter.chunks = 0
        # 255 KiB chunks: bytes 261_000..262_000 straddle chunks 0 and 1.
        await read_all(store.open_range("acme", info.media_id, 261_000, 262_000))
        assert counter.chunks == 2
    finally:
        await client.close()


async def test_settings_choose_the_backend_and_the_signer(
    tmp_path: Path, mongodb_server_uri: str, test_database: str
) -> None:
    settings = PlatformSettings(media_dir=tmp_path / "m")
    directory = media_store_from_settings(settings, None)
    assert isinstance(directory, DirectoryMediaStore)
    assert directory.root == tmp_path / "m"
    assert media_url_signer_from_settings(settings) is None

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_server_uri)
    try:
        gridfs = settings.model_copy(
            update={"media_backend": "gridfs", "media_url_secret": SecretStr("s" * 32)}
        )
        assert isinstance(
            media_store_from_settings(gridfs, client[test_database]), GridFSMediaStore
        )
        with pytest.raises(ValueError, match="needs a database"):
            media_store_from_settings(gridfs, None)
        signer = media_url_signer_from_settings(gridfs)
        assert signer is not None
    finally:
        await client.close()


# --- pure helpers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-99", ByteRange(0, 99)),
        ("bytes=100-", ByteRange(100, 999)),
        ("bytes=-300", ByteRange(700, 999)),
        ("bytes=-5000", ByteRange(0, 999)),
        ("bytes=5-5", ByteRange(5, 5)),
        ("bytes=990-5000", ByteRange(990, 999)),
        ("Bytes = 1-2", None),
        ("BYTES=1-2", ByteRange(1, 2)),
        ("bytes= 1-2 ,", ByteRange(1, 2)),
        ("bytes=5-2", None),
        ("bytes=abc", None),
        ("bytes=-", None),
        ("bytes=1-2-3", None),
        ("bytes=0x1-2", None),
        ("items=0-5", None),
        ("0-5", None),
        ("bytes=0-1,5-6", None),
        ("bytes=" + "9" * 40 + "-", None),
    ],
)
def test_parse_byte_range_follows_rfc_9110(header: str, expected: ByteRange | None) -> None:
    assert parse_byte_range(header, 1000) == expected


@pytest.mark.parametrize(
    ("header", "size"), [("bytes=1000-", 1000), ("bytes=-0", 1000), ("bytes=0-", 0)]
)
def test_parse_byte_range_refuses_ranges_past_the_end(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_byte_range(header, size)


def test_content_disposition_quotes_unsafe_names_and_keeps_the_exact_one() -> None:
    assert content_disposition("greeting.wav") == (
        "inline; filename=\"greeting.wav\"; filename*=UTF-8''greeting.wav"
    )
    assert content_disposition('Grüße "neu"; x.wav') == (
        'inline; filename="Gr__e _neu_; x.wav"; '
        "filename*=UTF-8''Gr%C3%BC%C3%9Fe%20%22neu%22%3B%20x.wav"
    )


def test_guess_content_type_knows_the_audio_formats() -> None:
    assert guess_content_type("a.wav") == "audio/wav"
    assert guess_content_type("a.opus") == "audio/ogg"
    assert guess_content_type("a.flac") == "audio/flac"
    assert guess_content_type("noext") == "application/octet-stream"


def test_signed_query_verifies_only_for_its_tenant_media_and_signature() -> None:
    signer = MediaUrlSigner(SECRET, clock=lambda: NOW)
    query = signer.query("acme", "abc123")
    exp, sig = (part.split("=", 1)[1] for part in query.split("&"))
    signer.verify("acme", "abc123", exp, sig)
    signer.verify("acme", "abc123", exp, sig.upper())
    tampered = ("0" if sig[0] != "0" else "1") + sig[1:]
    for tenant, media_id, e, s in [
        ("globex", "abc123", exp, sig),
        ("acme", "abc124", exp, sig),
        ("acme", "abc123", str(int(exp) + 1), sig),
        ("acme", "abc123", exp, tampered),
        ("acme", "abc123", exp, sig[:-1]),
        ("acme", "abc123", "", sig),
        ("acme", "abc123", exp, "zz" * 32),
    ]:
        with pytest.raises(InvalidSignature) as caught:
            signer.verify(tenant, media_id, e, s)
        assert caught.value.status == 400
    other = MediaUrlSigner(b"another-secret-of-enough-bytes!!", clock=lambda: NOW)
    with pytest.raises(InvalidSignature):
        other.verify("acme", "abc123", exp, sig)


def test_expired_signatures_are_refused() -> None:
    past = MediaUrlSigner(SECRET, clock=lambda: NOW - 3 * 3600)
    exp, sig = (part.split("=", 1)[1] for part in past.query("acme", "abc", ttl_s=3600).split("&"))
    with pytest.raises(SignatureExpired) as caught:
        MediaUrlSigner(SECRET, clock=lambda: NOW).verify("acme", "abc", exp, sig)
    assert caught.value.code == "signature_expired"


def test_signed_urls_last_at_least_the_ttl_and_repeat_within_a_window() -> None:
    clock = [NOW]  # 400 s into a 600 s window
    signer = MediaUrlSigner(SECRET, clock=lambda: clock[0])
    first = signer.url("https://media.example/", "acme", "abc", ttl_s=600)
    assert first.startswith("https://media.example/v1/t/acme/media/abc?exp=")
    exp = int(first.split("exp=")[1].split("&")[0])
    assert NOW + 600 <= exp <= NOW + 1200
    clock[0] = NOW + 150
    assert signer.url("https://media.example", "acme", "abc", ttl_s=600) == first
    clock[0] = NOW + 250
    assert signer.url("https://media.example", "acme", "abc", ttl_s=600) != first


def test_short_secrets_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        MediaUrlSigner(b"short")


# --- HTTP, both backends --------------------------------------------------------------------

TOKENS = {"token-acme": "acme", "token-globex": "globex"}


async def require_tenant_token(
    tenant: str, authorization: Annotated[str | None, Header()] = None
) -> None:
    """A stand-in for the platform's auth: a fixed bearer token per tenant."""
    if authorization is None or not authorization.startswith("Bearer "):
        raise Unauthenticated("a bearer token is required")
    owner = TOKENS.get(authorization.removeprefix("Bearer "))
    if owner is None:
        raise Unauthenticated("unknown token")
    if owner != tenant:
        raise Forbidden("the token is not for this tenant")


ACME = {"Authorization": "Bearer token-acme"}


@pytest.fixture
def signer() -> MediaUrlSigner:
    return MediaUrlSigner(SECRET, clock=lambda: NOW)


@pytest.fixture
async def http(store: MediaStore, signer: MediaUrlSigner) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    app.include_router(media_router(store, signer, require_tenant_token))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://media.test") as client:
        yield client


@pytest.fixture
async def stored(store: MediaStore) -> tuple[MediaInfo, bytes]:
    data = noise(FILE_SIZE)
    info = await store.put("acme", "recording", "call 1.wav", data)
    return info, data


def url_of(info: MediaInfo) -> str:
    return media_path(info.tenant_id, info.media_id)


async def test_http_get_serves_the_whole_file_with_validators(
    http: httpx.AsyncClient, stored: tuple[MediaInfo, bytes]
) -> None:
    info, data = stored
    response = await http.get(url_of(info), headers=ACME)
    assert response.status_code == 200
    assert response.content == data
    headers = response.headers
    assert headers["content-length"] == str(FILE_SIZE)
    assert headers["content-type"] == "audio/wav"
    assert headers["accept-ranges"] == "bytes"
    assert headers["etag"] == f'"{info.sha256}"'
    assert headers["last-modified"] == format_datetime(
        info.created_at.replace(microsecond=0), usegmt=True
    )
    assert headers["cache-control"] == CACHE_CONTROL
    assert "max-age=" in headers["cache-control"]
    assert headers["content-disposition"] == content_disposition("call 1.wav")
    assert headers["x-content-type-options"] == "nosniff"
    assert "content-range" not in headers


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        pytest.param("bytes=0-99", 0, 99, id="first-100"),
        pytest.param("bytes=0-1", 0, 1, id="safari-probe"),
        pytest.param("bytes=300000-", 300_000, FILE_SIZE - 1, id="open-ended"),
        pytest.param("bytes=-500", FILE_SIZE - 500, FILE_SIZE - 1, id="suffix"),
        pytest.param("bytes=4242-4242", 4242, 4242, id="single-byte"),
        pytest.param("bytes=700000-999999999", 700_000, FILE_SIZE - 1, id="clamped"),
    ],
)
async def test_http_range_requests_get_206_with_exact_content_range(
    http: httpx.AsyncClient, stored: tuple[MediaInfo, bytes], header: str, start: int, end: int
) -> None:
    info, data = stored
    response = await http.get(url_of(info), headers={**ACME, "Range": header})
    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes {start}-{end}/{FILE_SIZE}"
    assert response.headers["content-length"] == str(end - start + 1)
    assert response.content == data[start : end + 1]
    assert response.headers["etag"] == f'"{info.sha256}"'


@pytest.mark.parametrize("header", ["bytes=700001-", "bytes=900000-900010", "bytes=-0"])
async def test_http_unsatisfiable_range_gets_416_with_the_size(
    http: httpx.AsyncClient, stored: tuple[MediaInfo, bytes], header: str
) -> None:
    info, _ = stored
    response = await http.get(url_of(info), headers={**ACME, "Range": header})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{FILE_SIZE}"
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "range_not_satisfiable"


@pytest.mark.parametrize(
    "header", ["bytes=abc", "bytes=9-2", "items=0-5", "bytes=0-1,10-20", "bytes 0-5", "bytes=--1"]
)
async def test_http_malformed_or_multiple_ranges_are_ignored(
    http: httpx.AsyncClient, stored: tuple[MediaInfo, bytes], header: str
) -> None:
    info, data = stored
    response = await http.get(url_of(info), headers={**ACME, "Range": header})
    assert response.status_code == 200
    assert response.headers["content-length"] == str(FILE_SIZE)
    assert response.content == data


async def test_http_head_sends_the_get_headers_without_a_body(
    http: httpx.AsyncClient, stored: tuple[MediaInfo, bytes]
) -> None:
    info, _ = stored
    get = await http.get(url_of(info), headers=ACME)
    head = await http.head(url_of(info), headers=ACME)
    assert head.status_code == 200
    assert head.content == b""
    for name in ("content-length", "content-type", "etag", "last-modified", "accept-ranges"):
        assert head.headers[name] == get.headers[name]
    # RFC 9110 defines Range for GET only; HEAD describes the whole file.
    ranged = await http.head(url_of(info), headers={**ACME, "Range": "bytes=0-9"})
    assert ranged.status_code == 200
    assert ranged.headers["content-length"] == str(FILE_SIZE)


async def test_http_matching_etag_or_date_gets_304(
    http: httpx.AsyncClient, stored: tuple[MediaInfo, bytes]
) -> None:
    info, _ = stored
    etag = f'"{info.sha256}"'
    for if_none_match in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        response = await http.get(url_of(info), headers={**ACME, "If-None-Match": if_none_match})
        assert response.status_code == 304
        assert response.content == b""
        assert response.headers["etag"] == etag
    stale = await http.get(url_of(info), headers={**ACME, "If-None-Match": '"other"'})
    assert stale.status_code == 200
    later = format_datetime(info.created_at + timedelta(hours=1), usegmt=True)
    since = await http.get(url_of(info), headers={**ACME, "If-Modified-Since": later})
    assert since.status_code == 304


async def test_http_if_range_serves_the_range_only_for_the_current_etag(
    http: httpx.AsyncClient, stored: tuple[MediaInfo, bytes]
) -> None:
    info, data = stored
    etag = f'"{info.sha256}"'
    current = await http.get(
        url_of(info), headers={**ACME, "Range": "bytes=10-19", "If-Range": etag}
    )
    assert current.status_code == 206
    assert current.content == data[10:20]
    for stale in ('"something-else"', f"W/{etag}", "not a date"):
        response = await http.get(
            url_of(info), headers={**ACME, "Range": "bytes=10-19", "If-Range": stale}
        )
        assert response.status_code == 200
        assert response.content == data


async def test_http_signed_url_is_accepted_without_credentials(
    http: httpx.AsyncClient, stored: tuple[MediaInfo, bytes], signer: MediaUrlSigner
) -> None:
    info, data = stored
    url = signer.url("http://media.test", "acme", info.media_id)
    head = await http.head(url)
    assert head.status_code == 200
    assert head.headers["content-length"] == str(FILE_SIZE)
    response = await http.get(url)
    assert response.status_code == 200
    assert response.content == data
    ranged = await http.get(url, headers={"Range": "bytes=-10"})
    assert ranged.status_code == 206
    assert ranged.content == data[-10:]


async def test_http_tampered_or_expired_signature_is_refused_with_400(
    http: httpx.AsyncClient, stored: tuple[MediaInfo, bytes], signer: MediaUrlSigner
) -> None:
    info, _ = stored
    query = signer.query("acme", info.media_id)
    exp, sig = (part.split("=", 1)[1] for part in query.split("&"))
    tampered = ("0" if sig[0] != "0" else "1") + sig[1:]
    expired = MediaUrlSigner(SECRET, clock=lambda: NOW - 86_400).query("acme", info.media_id)
    for params, code in [
        (f"exp={exp}&sig={tampered}", "invalid_signature"),
        (f"exp={int(exp) + 3600}&sig={sig}", "invalid_signature"),
        (f"sig={sig}", "invalid_signature"),
        (expired, "signature_expired"),
    ]:
        # Even with a valid token: a request that carries a signature is judged by it.
        response = await http.get(f"{url_of(info)}?{params}", headers=ACME)
        assert response.status_code == 400
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert (body["status"], body["code"]) == (400, code)
        assert body["detail"]


async def test_http_signature_for_another_tenants_path_is_refused(
    http: httpx.AsyncClient, store: MediaStore, signer: MediaUrlSigner
) -> None:
    theirs = await store.put("globex", "prompt", "g.wav", b"globex")
    ours = await store.put("acme", "prompt", "a.wav", b"acme")
    globex_query = signer.query("globex", theirs.media_id)
    acme_query = signer.query("acme", ours.media_id)
    # Globex's signature moved onto an acme path, and acme's signature onto globex's file.
    for path, query in [
        (media_path("acme", theirs.media_id), globex_query),
        (media_path("globex", theirs.media_id), acme_query),
    ]:
        response = await http.get(f"{path}?{query}")
        assert response.status_code == 400
        assert response.json()["code"] == "invalid_signature"


async def test_http_without_credentials_gets_401_and_another_tenants_token_403(
    http: httpx.AsyncClient, stored: tuple[MediaInfo, bytes]
) -> None:
    info, _ = stored
    anonymous = await http.get(url_of(info))
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"
    assert anonymous.headers["www-authenticate"] == "Bearer"
    assert anonymous.json()["code"] == "unauthenticated"
    wrong = await http.get(url_of(info), headers={"Authorization": "Bearer token-globex"})
    assert wrong.status_code == 403
    assert wrong.json()["code"] == "forbidden"
    head = await http.head(url_of(info))
    assert head.status_code == 401


async def test_http_unknown_or_other_tenants_media_gets_the_same_404(
    http: httpx.AsyncClient, store: MediaStore
) -> None:
    theirs = await store.put("globex", "prompt", "g.wav", b"globex")
    missing = await http.get(media_path("acme", "0000000000000000000000000000"), headers=ACME)
    other = await http.get(media_path("acme", theirs.media_id), headers=ACME)
    for response in (missing, other):
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["cache-control"] == "no-store"
        body = response.json()
        assert (body["status"], body["code"]) == (404, "not_found")
    assert missing.json()["detail"].startswith("no media ")
    assert other.json()["detail"].startswith("no media ")


async def test_http_empty_file_is_served_and_ranges_on_it_are_unsatisfiable(
    http: httpx.AsyncClient, store: MediaStore
) -> None:
    info = await store.put("acme", "tts", "empty.wav", b"")
    whole = await http.get(url_of(info), headers=ACME)
    assert (whole.status_code, whole.content) == (200, b"")
    assert whole.headers["content-length"] == "0"
    ranged = await http.get(url_of(info), headers={**ACME, "Range": "bytes=0-"})
    assert ranged.status_code == 416
    assert ranged.headers["content-range"] == "bytes */0"
