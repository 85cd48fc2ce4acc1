"""Documents out of an uploaded zip, refusing what could hurt: bombs, path tricks, links, nesting.

Nothing is written to disk: entries are read into memory with a hard cap, and their names are only
labels. The sizes in the zip's directory are checked first (cheap) and then enforced while reading,
because a crafted archive can lie about them.
"""

from __future__ import annotations

import io
import stat
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath

from app.lib.errors import DocumentError
from app.lib.problems import BATCH_TOO_LARGE, UNSAFE_ARCHIVE, ErrorItem

ZIP_MAGIC = b"PK\x03\x04"
MAX_RATIO = 200
"""Unpacked/packed size above which an entry (over 1 MiB unpacked) is taken for a bomb; real PDFs
and images compress far less (text-only PDFs reach about 10-20x)."""
_RATIO_FLOOR = 1024 * 1024
_IGNORED_PREFIXES = ("__MACOSX/",)


@dataclass(frozen=True)
class Entry:
    name: str
    data: bytes


@dataclass(frozen=True)
class Limits:
    max_documents: int
    max_total_bytes: int
    max_document_bytes: int


def is_zip(data: bytes) -> bool:
    return data.startswith(ZIP_MAGIC)


def _unsafe_name(name: str) -> str | None:
    if "\\" in name or name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "absolute or Windows-style path"
    if ".." in PurePosixPath(name).parts:
        return "`..` in the path"
    if "\x00" in name:
        return "NUL in the name"
    return None


def read_zip(data: bytes, limits: Limits) -> list[Entry]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = [
            i for i in archive.infolist() if not i.is_dir() and not i.filename.startswith(_IGNORED_PREFIXES)
        ]
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise DocumentError(UNSAFE_ARCHIVE, f"The zip cannot be read: {exc}.") from exc
    errors: list[ErrorItem] = []
    for info in infos:
        where = f"/files/{info.filename}"
        reason = _unsafe_name(info.filename)
        if reason is None and stat.S_ISLNK(info.external_attr >> 16):
            reason = "symbolic link"
        if reason is None and info.flag_bits & 0x1:
            reason = "encrypted entry"
        if reason is None and info.filename.lower().endswith((".zip", ".tar", ".gz", ".7z", ".rar")):
            reason = "nested archive"
        if reason is not None:
            errors.append({"pointer": where, "detail": reason})
    if errors:
        raise DocumentError(UNSAFE_ARCHIVE, "The zip has entries that are refused.", errors=errors)
    if len(infos) > limits.max_documents:
        raise DocumentError(
            BATCH_TOO_LARGE,
            f"The zip has {len(infos)} files; a batch has at most {limits.max_documents}.",
        )
    if sum(i.file_size for i in infos) > limits.max_total_bytes:
        raise DocumentError(BATCH_TOO_LARGE, f"The zip unpacks to more than {limits.max_total_bytes} bytes.")
    entries = []
    for info in infos:
        if info.file_size > limits.max_document_bytes:
            raise DocumentError(
                BATCH_TOO_LARGE,
                f"{info.filename!r} unpacks to {info.file_size} bytes; a document has at most "
                f"{limits.max_document_bytes}.",
            )
        if info.file_size > _RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise DocumentError(
                BATCH_TOO_LARGE, f"{info.filename!r} looks like a zip bomb (ratio over {MAX_RATIO})."
            )
        entries.append(Entry(info.filename, _read_capped(archive, info)))
    return entries


def _read_capped(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """Read no more than the declared size (plus one byte to catch a lie)."""
    try:
        with archive.open(info) as handle:
            data = handle.read(info.file_size + 1)
    except (zipfile.BadZipFile, OSError, RuntimeError, EOFError) as exc:
        raise DocumentError(UNSAFE_ARCHIVE, f"{info.filename!r} cannot be unpacked: {exc}.") from exc
    if len(data) > info.file_size:
        raise DocumentError(UNSAFE_ARCHIVE, f"{info.filename!r} unpacks beyond its declared size.")
    return data
