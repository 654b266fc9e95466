"""Streaming reader for multipart upload bodies: hashes the file and sends it on in one pass.

The body is never held in memory; its size is bounded while it arrives, not after. When the
client names the file's sha256 in a field before the file part, the bytes stream on into the blob
store as they arrive (a ``BlobWriter``), committed only once everything checks out, and only the
head is kept for type detection: the file is spooled to disk only when its type needs the whole
file (zip, OLE2) or the store already holds it (see ``BlobWriter.skipping``). Without the field,
the file is spooled to disk while it is hashed and stored once it has arrived.
"""

from __future__ import annotations

import contextlib
import hashlib
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING
from urllib.parse import unquote_to_bytes

import anyio.to_thread
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from services.blobs import BlobWriter
from services.errors import BadRequest, InvalidField, MaterialsError, PayloadTooLarge
from services.filetypes import HEAD_BYTES, needs_whole_file
from services.metadata import SHA256_FIELD, normalize_sha256
from services.private_files import make_private_dir

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks
    from starlette.requests import Request

__all__ = ["SpooledUpload", "read_upload"]

# Below this, writing and hashing a chunk costs microseconds and stays on the event loop;
# bigger batches (a whole small body in one message) go to a worker thread.
_THREAD_THRESHOLD = 256 * 1024
# Bytes streamed on to the blob store are handed over in batches this big (on a worker thread:
# the store may make the request wait while it catches up).
_WRITER_BATCH = 1024 * 1024


@dataclass(frozen=True)
class SpooledUpload:
    """An uploaded file, with its digest and the other form fields: spooled to disk (``path``),
    or only its first bytes (``head``) when it streamed on into the blob store (``writer``)."""

    path: Path | None
    head: bytes
    size: int
    sha256: str
    filename: str
    declared_type: str | None
    fields: dict[str, str]
    # The bytes on their way into the blob store under the declared sha256, if one was given.
    writer: BlobWriter | None = None

    def cleanup(self) -> None:
        """Remove the spooled file and drop an uncommitted blob; harmless when already done."""
        if self.writer is not None:
            self.writer.abort()
        if self.path is not None:
            self.path.unlink(missing_ok=True)


async def read_upload(
    request: Request,
    *,
    max_bytes: int,
    spool_dir: Path,
    file_field: str = "file",
    max_field_bytes: int = 64 * 1024,
    max_fields: int = 64,
    open_writer: Callable[[str], BlobWriter] | None = None,
) -> SpooledUpload:
    """Stream a multipart/form-data body into spool_dir, hashing the file and bounding the size.

    With ``open_writer``, a valid ``sha256`` field sent before the file opens a blob writer for
    it; the caller commits it after checking the digest, or ``cleanup`` drops it.
    """
    declared_length = _content_length(request)
    if declared_length is not None and declared_length > max_bytes:
        raise PayloadTooLarge(f"请求体超过 {max_bytes} 字节上限")
    reader = _PartReader(
        spool_dir=spool_dir,
        file_field=file_field,
        max_field_bytes=max_field_bytes,
        max_fields=max_fields,
        open_writer=open_writer,
    )
    parser = _parser(request.headers.get("content-type"), reader.callbacks())
    try:
        received = 0
        async with contextlib.aclosing(request.stream()) as stream:
            try:
                async for chunk in stream:
                    received += len(chunk)
                    if received > max_bytes:
                        raise PayloadTooLarge(f"请求体超过 {max_bytes} 字节上限")
                    try:
                        parser.write(chunk)
                    except FormParserError as exc:
                        raise BadRequest("上传内容格式错误", code="malformed_multipart") from exc
                    await reader.flush()
            except PayloadTooLarge:
                raise
            except MaterialsError:
                # A body both too large and invalid answers 413: without a declared length,
                # finish counting (discarding, at most max_bytes) before blaming the content.
                if declared_length is None:
                    async for chunk in stream:
                        received += len(chunk)
                        if received > max_bytes:
                            raise PayloadTooLarge(f"请求体超过 {max_bytes} 字节上限") from None
                raise
        parser.finalize()
        await reader.flush(final=True)
        return reader.finish()
    except BaseException:
        # Also on ClientDisconnect and cancellation: nothing may stay behind in spool_dir.
        reader.discard()
        raise


def _content_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    if value is None or not (value.isascii() and value.isdigit()):
        # A malformed length never reaches the app (the server rejects it); counting still bounds.
        return None
    return int(value)


def _parser(content_type: str | None, callbacks: MultipartCallbacks) -> MultipartParser:
    kind, options = parse_options_header(content_type)
    boundary = options.get(b"boundary", b"")
    if kind != b"multipart/form-data" or not boundary:
        raise BadRequest("请求须为带 boundary 的 multipart/form-data", code="not_multipart")
    try:
        return MultipartParser(boundary, callbacks)
    except FormParserError:  # a boundary longer than the parser accepts
        raise BadRequest("multipart boundary 无效", code="not_multipart") from None


class _PartReader:
    """Parser callbacks: the file part is hashed on its way to disk, other parts go to buffers."""

    def __init__(
        self,
        *,
        spool_dir: Path,
        file_field: str,
        max_field_bytes: int,
        max_fields: int,
        open_writer: Callable[[str], BlobWriter] | None,
    ) -> None:
        self._spool_dir = spool_dir
        self._open_writer = open_writer
        self._writer: BlobWriter | None = None
        self._file_field = file_field
        self._max_field_bytes = max_field_bytes
        self._max_fields = max_fields
        self._fields: dict[str, str] = {}
        self._complete = False
        # The part being parsed.
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._headers: dict[bytes, bytes] = {}
        self._field_name: str | None = None  # set for a plain field, None for the file part
        self._field_value = bytearray()
        self._in_file = False
        # The file part.
        self._has_file = False
        self._spool_decided = False  # with a writer, on the head: see _decide_spool
        self._head = bytearray()
        self._file: IO[bytes] | None = None
        self._path: Path | None = None
        self._filename = ""
        self._declared_type: str | None = None
        self._digest = hashlib.sha256()
        self._size = 0
        self._pending: list[memoryview] = []
        self._pending_bytes = 0

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self._on_part_begin,
            "on_header_field": self._on_header_field,
            "on_header_value": self._on_header_value,
            "on_header_end": self._on_header_end,
            "on_headers_finished": self._on_headers_finished,
            "on_part_data": self._on_part_data,
            "on_part_end": self._on_part_end,
            "on_end": self._on_end,
        }

    def _on_part_begin(self) -> None:
        self._headers = {}
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._field_name = None
        self._field_value = bytearray()
        self._in_file = False

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        # Header lines are bounded by the parser (max_header_size), so buffering them is safe.
        self._header_name += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _on_header_end(self) -> None:
        name = bytes(self._header_name).strip().lower()
        if name in (b"content-disposition", b"content-type"):
            if name in self._headers:
                raise _malformed("分段头重复")
            self._headers[name] = bytes(self._header_value).strip()
        self._header_name = bytearray()
        self._header_value = bytearray()

    def _on_headers_finished(self) -> None:
        disposition = self._headers.get(b"content-disposition")
        if disposition is None:
            raise _malformed("分段缺少 Content-Disposition")
        params = _disposition_params(disposition)
        if "name" not in params:
            raise _malformed("分段缺少字段名 name")
        name = _decode_utf8(
            params["name"].encode("latin-1"), what="字段名", details={"parameter": "name"}
        )
        if name == self._file_field:
            self._begin_file(params)
        elif "filename" in params or "filename*" in params:
            raise BadRequest(f"只能上传一个文件，字段 {name} 不应带文件", code="unexpected_file")
        elif name in self._fields:
            raise BadRequest(f"字段 {name} 重复", code="duplicate_field", details={"field": name})
        elif len(self._fields) >= self._max_fields:
            raise BadRequest(f"表单字段超过 {self._max_fields} 个", code="too_many_fields")
        else:
            self._field_name = name

    def _begin_file(self, params: dict[str, str]) -> None:
        if self._has_file:
            raise BadRequest(f"字段 {self._file_field} 只能有一个文件", code="multiple_files")
        self._has_file = True
        self._filename = _filename(params)
        content_type = self._headers.get(b"content-type")
        if content_type is not None:
            self._declared_type = _decode_utf8(
                content_type, what="文件类型", details={"field": "content_type"}
            )
        self._in_file = True
        declared = normalize_sha256(self._fields.get(SHA256_FIELD, ""))
        if self._open_writer is not None and declared is not None:
            self._writer = self._open_writer(declared)
        else:
            self._open_spool()
            self._spool_decided = True

    def _open_spool(self) -> None:
        make_private_dir(self._spool_dir)  # the spooled file itself: mkstemp, 0600
        self._file = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in finish()/discard()
            dir=self._spool_dir, prefix="upload-", suffix=".part", delete=False
        )
        self._path = Path(self._file.name)

    def _decide_spool(self, seen: bytes) -> None:
        """Spool to disk after all when the type needs the whole file or the store will not keep
        the bytes; ``seen`` is everything received so far."""
        self._spool_decided = True
        assert self._writer is not None
        if needs_whole_file(bytes(self._head)) or self._writer.skipping:
            self._open_spool()
            assert self._file is not None
            self._file.write(seen)

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            # A view into the current chunk; flush() consumes it before the next chunk is read.
            self._pending.append(memoryview(data)[start:end])
            self._pending_bytes += end - start
        elif self._field_name is not None:
            if len(self._field_value) + (end - start) > self._max_field_bytes:
                name = self._field_name
                raise InvalidField(
                    name, f"字段 {name} 超过 {self._max_field_bytes} 字节", code="field_too_long"
                )
            self._field_value += data[start:end]

    def _on_part_end(self) -> None:
        if self._field_name is not None:
            name = self._field_name
            self._fields[name] = _decode_utf8(
                bytes(self._field_value), what=f"字段 {name}", details={"field": name}
            )
            self._field_name = None
            self._field_value = bytearray()
        self._in_file = False

    def _on_end(self) -> None:
        self._complete = True

    async def flush(self, *, final: bool = False) -> None:
        """Write and hash the file bytes seen so far (at the end, or once a batch is full)."""
        if not self._pending:
            return
        if self._writer is not None and self._pending_bytes < _WRITER_BATCH and not final:
            return  # the views keep their (immutable) chunks alive until then
        pieces, self._pending = self._pending, []
        batch, self._pending_bytes = self._pending_bytes, 0
        if batch >= _THREAD_THRESHOLD or self._writer is not None:
            await anyio.to_thread.run_sync(self._write, pieces)
        else:
            self._write(pieces)

    def _write(self, pieces: list[memoryview]) -> None:
        for piece in pieces:
            self._digest.update(piece)
            self._size += piece.nbytes
            if self._writer is not None:
                self._writer.write(piece)  # first: it learns whether the store holds the blob
            seen = len(self._head)
            if seen < HEAD_BYTES:
                self._head += piece[: HEAD_BYTES - seen]
                if not self._spool_decided and len(self._head) == HEAD_BYTES:
                    # Until now the head was all there was.
                    self._decide_spool(bytes(self._head[:seen]))
            if self._file is not None:
                self._file.write(piece)

    def finish(self) -> SpooledUpload:
        if not self._complete:
            raise _malformed("上传内容不完整，缺少结束边界")
        if not self._has_file:
            field = self._file_field
            raise InvalidField(field, f"缺少文件字段 {field}", code="missing_file")
        if not self._spool_decided:  # a file shorter than the head
            self._decide_spool(bytes(self._head))
        if self._file is not None:
            self._file.close()
        return SpooledUpload(
            path=self._path,
            head=bytes(self._head),
            size=self._size,
            sha256=self._digest.hexdigest(),
            filename=self._filename,
            declared_type=self._declared_type,
            fields=dict(self._fields),
            writer=self._writer,
        )

    def discard(self) -> None:
        self._pending = []
        if self._writer is not None:
            self._writer.abort()
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
        if self._path is not None:
            self._path.unlink(missing_ok=True)


def _malformed(message: str) -> BadRequest:
    return BadRequest(f"上传内容格式错误：{message}", code="malformed_multipart")


def _decode_utf8(raw: bytes, *, what: str, details: dict[str, str]) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(
            f"{what}不是有效的 UTF-8 编码", code="invalid_encoding", details=details
        ) from None


def _disposition_params(raw: bytes) -> dict[str, str]:
    """Parameters of a form-data Content-Disposition, values as latin-1 text (one char per byte).

    Written here because python_multipart drops `filename*` and rewrites Windows-looking paths.
    """
    text = raw.decode("latin-1")
    kind, _, rest = text.partition(";")
    if kind.strip().lower() != "form-data":
        raise _malformed("Content-Disposition 须为 form-data")
    params: dict[str, str] = {}
    i, n = 0, len(rest)
    while i < n:
        if rest[i] in " \t;":
            i += 1
            continue
        end = _find_any(rest, "=;", i)
        if end == n or rest[end] == ";":
            i = end  # a bare token carries nothing we use
            continue
        key = rest[i:end].strip().lower()
        i = end + 1
        while i < n and rest[i] in " \t":
            i += 1
        if i < n and rest[i] == '"':
            value, i = _quoted_string(rest, i + 1)
            while i < n and rest[i] in " \t":
                i += 1
            if i < n and rest[i] != ";":
                raise _malformed("Content-Disposition 参数格式错误")
        else:
            end = _find_any(rest, ";", i)
            value, i = rest[i:end].strip(), end
        if key in params:
            raise _malformed(f"Content-Disposition 参数 {key} 重复")
        params[key] = value
    return params


def _find_any(text: str, chars: str, start: int) -> int:
    for i in range(start, len(text)):
        if text[i] in chars:
            return i
    return len(text)


def _quoted_string(text: str, i: int) -> tuple[str, int]:
    # Only \" and \\ are escapes (as Django, Werkzeug and Starlette read them): browsers send
    # other backslashes unescaped, and they stay part of the name.
    chars: list[str] = []
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n and text[i + 1] in '"\\':
            chars.append(text[i + 1])
            i += 2
        elif c == '"':
            return "".join(chars), i + 1
        else:
            chars.append(c)
            i += 1
    raise _malformed("Content-Disposition 引号未闭合")


def _filename(params: dict[str, str]) -> str:
    details = {"field": "filename"}
    extended = params.get("filename*")
    if extended is not None:
        charset, quote, rest = extended.partition("'")
        _language, quote2, encoded = rest.partition("'")
        if not (quote and quote2):
            raise BadRequest("文件名 filename* 格式错误", code="invalid_encoding", details=details)
        raw = unquote_to_bytes(encoded)
        if charset.lower() in ("utf-8", "utf8"):
            return _decode_utf8(raw, what="文件名", details=details)
        if charset.lower() in ("iso-8859-1", "latin-1", "latin1", "us-ascii"):
            return raw.decode("latin-1")
        raise BadRequest(
            f"不支持的文件名字符集 {charset}", code="invalid_encoding", details=details
        )
    plain = params.get("filename")
    if plain is None:
        return ""
    # Browsers send the name as raw UTF-8 bytes inside the quotes.
    return _decode_utf8(plain.encode("latin-1"), what="文件名", details=details)
