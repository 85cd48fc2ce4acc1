"""Uploaded files read from the request body as it streams in, each held to its limit.

Litestar's ``request.form()`` reads a whole multipart body (up to the route's
``request_max_body_size``) before the handler sees a single part, so a route taking a large batch
would read a 100 MB upload in full to find a file over the document limit. Here every chunk is
counted as it arrives: a file passing its limit, or a body passing the route's limit, stops the
reading at that chunk, and a file part beyond the number the route takes is refused at its header.
Chunked uploads (no Content-Length) are held to the same limits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.exceptions import ClientException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from multipart import (  # type: ignore[import-untyped]  # Litestar's own multipart parser
    MultipartSegment,
    ParserError,
    ParserLimitReached,
    PushMultipartParser,
)

FILE_FIELD = "file"
HEAD_BYTES = 8
"""How much of a file's start ``FileLimit`` is shown (enough for any magic number it checks)."""

FileLimit = Callable[[bytes], int]
"""The byte limit of one file given its first bytes: a batch's zip may be larger than a document."""


@dataclass(frozen=True)
class Upload:
    filename: str | None  # None for a raw body; `file-<n>` for a part that names none
    data: bytes


class UploadTooLarge(Exception):
    """The upload passed a limit; nothing after that chunk was read."""

    def __init__(self, limit: int, detail: str) -> None:
        super().__init__(detail)
        self.limit = limit


class FileTooLarge(UploadTooLarge):
    """One file (a `file` part, or the raw body) passed its limit."""

    def __init__(self, filename: str | None, limit: int) -> None:
        what = "The document" if filename is None else f"The file {filename!r}"
        super().__init__(limit, f"{what} is larger than the limit of {limit} bytes.")


class BodyTooLarge(UploadTooLarge):
    """The whole body passed the route's ``request_max_body_size`` (files plus form framing)."""

    def __init__(self, limit: int) -> None:
        super().__init__(limit, f"The request body is larger than the limit of {limit} bytes.")


class TooManyFiles(Exception):
    """The form has more `file` parts than the route takes; the extra part was not read."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"The form has more than {limit} `file` part(s).")
        self.limit = limit


class _File:
    """One file's bytes as they arrive, refused as soon as they pass the limit."""

    def __init__(self, filename: str | None, limit_of: FileLimit) -> None:
        self.filename = filename
        self.limit_of = limit_of
        self.chunks: list[bytes] = []
        self.size = 0
        self.head = b""

    def add(self, chunk: bytes) -> None:
        if len(self.head) < HEAD_BYTES:
            self.head = (self.head + chunk[:HEAD_BYTES])[:HEAD_BYTES]
        self.size += len(chunk)
        limit = self.limit_of(self.head)
        if self.size > limit:
            raise FileTooLarge(self.filename, limit)
        self.chunks.append(chunk)

    def data(self) -> bytes:
        return b"".join(self.chunks)


async def read_uploads(request: Request[Any, Any, Any], limit_of: FileLimit, max_files: int) -> list[Upload]:
    """The `file` parts of a multipart form (other parts are skipped), or the raw body as one file
    (none if empty). Raises ``FileTooLarge``, ``BodyTooLarge``, ``TooManyFiles``, or
    ``ClientException`` (400) for a malformed form."""
    content_type, options = request.content_type
    try:
        if content_type == "multipart/form-data":
            return await _read_form(request, options.get("boundary"), limit_of, max_files)
        body = _File(None, limit_of)
        async for chunk in request.stream():
            body.add(chunk)
        return [Upload(None, body.data())] if body.size else []
    except RequestEntityTooLarge as exc:  # the route's request_max_body_size, checked by Litestar
        raise BodyTooLarge(request.route_handler.resolve_request_max_body_size() or 0) from exc


async def _read_form(
    request: Request[Any, Any, Any], boundary: str | None, limit_of: FileLimit, max_files: int
) -> list[Upload]:
    if not boundary:
        raise ClientException("The multipart Content-Type has no boundary.")
    files: list[Upload] = []
    current: _File | None = None  # the `file` part being read; None inside other parts
    try:
        parser = PushMultipartParser(
            boundary.encode(), max_segment_count=request.app.multipart_form_part_limit
        )
        async for chunk in request.stream():  # ends with b"", which makes the parser check the end
            if parser.closed:  # after the closing boundary: an epilogue, ignored
                continue
            for event in parser.parse(chunk):
                if isinstance(event, MultipartSegment):
                    current = None
                    if event.name == FILE_FIELD:
                        if len(files) == max_files:
                            raise TooManyFiles(max_files)
                        current = _File(event.filename or f"file-{len(files) + 1}", limit_of)
                elif event is None:  # the end of a part
                    if current is not None:
                        files.append(Upload(current.filename, current.data()))
                    current = None
                elif current is not None:
                    current.add(event)
    except ParserLimitReached as exc:
        raise ClientException(f"The multipart form is outside the parser's limits: {exc}.") from exc
    except ParserError as exc:
        raise ClientException(f"The multipart form is malformed: {exc}.") from exc
    return files
