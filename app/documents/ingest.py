"""Open an uploaded document safely and produce its pages one at a time.

Everything that can refuse a document (type, size, page count, pixels, encryption, damage) runs in
``open_document`` before any page is rendered. Pages are then produced lazily by ``Document.pages``,
so a 300-page PDF never holds more than one rendered page in memory. Only what is printed on a
page is read: attachments, embedded files, scripts and links are never touched.

PyMuPDF is not thread-safe: everything here runs in one thread per process (``app.documents.pdf_thread``).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pymupdf
from PIL import ExifTags, Image, UnidentifiedImageError

from app.documents.detect import DocumentType, detect_type
from app.lib.errors import DocumentError
from app.lib.problems import (
    DOCUMENT_CORRUPT,
    DOCUMENT_EMPTY,
    DOCUMENT_ENCRYPTED,
    DOCUMENT_PASSWORD_INCORRECT,
    DOCUMENT_TOO_LARGE,
    IMAGE_TOO_LARGE,
    INVALID_PAGE_SELECTION,
    TOO_MANY_PAGES,
    UNSUPPORTED_DOCUMENT_TYPE,
)
from app.pages import BBox, Page, Region, Word, clamp_box

# Pictures smaller than this share of a born-digital page are not OCRed (icons, bullets, rules).
MIN_PICTURE_AREA = 0.01
# A page whose text layer has fewer visible characters than this is read as an image.
MIN_TEXT_CHARS = 5
# Share of unreadable characters above which a text layer is garbage (broken font encodings).
MAX_GARBAGE_RATIO = 0.3
# An image covering this share of a page suggests a scan; its text layer is then checked for
# invisibility (an OCR layer under a scan is "render mode 3": not printed, not trusted).
SCAN_IMAGE_COVERAGE = 0.5
MAX_INVISIBLE_RATIO = 0.5


@dataclass(frozen=True)
class IngestLimits:
    max_bytes: int = 50 * 1024 * 1024
    max_pages: int = 500
    max_pixels: int = 60_000_000
    dpi: int = 200
    max_long_side: int = 3500
    einvoice: bool = True
    """Read e-invoice XML (``app.einvoice``): a PDF's standard invoice attachment, an XML upload."""
    max_xml_bytes: int = 5 * 1024 * 1024


def parse_page_selection(text: str | None, page_count: int) -> list[int]:
    """``"1-3,7"`` -> ``[1, 2, 3, 7]`` (sorted, unique, 1-based); ``None`` or ``""`` -> every page."""
    if text is None or not text.strip():
        return list(range(1, page_count + 1))
    chosen: set[int] = set()
    for part in text.split(","):
        match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not match:
            raise DocumentError(
                INVALID_PAGE_SELECTION,
                f"{part.strip()!r} is not a page or a range like 2-5.",
                errors=[{"pointer": "/pages", "detail": f"cannot read {part.strip()!r}"}],
            )
        first = int(match.group(1))
        last = int(match.group(2) or first)
        if first < 1 or last < first or last > page_count:
            raise DocumentError(
                INVALID_PAGE_SELECTION,
                f"{part.strip()!r} is outside the document's pages 1-{page_count}.",
                errors=[{"pointer": "/pages", "detail": f"pages are 1-{page_count}"}],
                page_count=page_count,
            )
        chosen.update(range(first, last + 1))
    return sorted(chosen)


class Document:
    """An opened, validated document. Call ``pages`` to render, ``close`` when done."""

    type: DocumentType
    page_count: int

    def pages(self, selection: list[int] | None = None, *, native_layout: bool = False) -> Iterator[Page]:
        """Render the selected pages one at a time; ``native_layout`` also reads born-digital
        pages' own layout (``Page.native_regions``)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the file; pages already produced stay valid."""

    def __enter__(self) -> Document:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def open_document(data: bytes, limits: IngestLimits, password: str | None = None) -> Document:
    """Check everything that can be checked without rendering, then return the document."""
    if len(data) > limits.max_bytes:
        raise DocumentError(
            DOCUMENT_TOO_LARGE,
            f"The file is {len(data)} bytes; the limit is {limits.max_bytes}.",
            limit_bytes=limits.max_bytes,
        )
    kind = detect_type(data[:1024])
    if kind is None:
        raise DocumentError(
            UNSUPPORTED_DOCUMENT_TYPE, "The file is not a PDF, PNG, JPEG, TIFF, WebP or XML document."
        )
    if kind == "xml":  # e-invoices are read by app.einvoice; an XML file has no pages to render
        raise DocumentError(UNSUPPORTED_DOCUMENT_TYPE, "An XML document has no pages.")
    document: Document = (
        PdfDocument(data, limits, password) if kind == "pdf" else ImageDocument(data, kind, limits)
    )
    if document.page_count == 0:
        document.close()
        raise DocumentError(DOCUMENT_EMPTY, "The document has no pages.")
    if document.page_count > limits.max_pages:
        document.close()
        raise DocumentError(
            TOO_MANY_PAGES,
            f"The document has {document.page_count} pages; the limit is {limits.max_pages}.",
            page_count=document.page_count,
            limit_pages=limits.max_pages,
        )
    return document


class PdfDocument(Document):
    def __init__(self, data: bytes, limits: IngestLimits, password: str | None) -> None:
        self.type = "pdf"
        self.limits = limits
        try:
            self._doc = pymupdf.open(stream=data, filetype="pdf")
        except Exception as exc:  # PyMuPDF raises several types for unreadable files
            raise DocumentError(DOCUMENT_CORRUPT, f"The PDF cannot be read: {exc}") from exc
        if self._doc.needs_pass:
            if password is None:
                self._doc.close()
                raise DocumentError(DOCUMENT_ENCRYPTED, "The PDF is encrypted and no password was given.")
            if not self._doc.authenticate(password):
                self._doc.close()
                raise DocumentError(DOCUMENT_PASSWORD_INCORRECT, "The password does not open this PDF.")
        try:
            self.page_count = self._doc.page_count
        except Exception as exc:
            raise DocumentError(DOCUMENT_CORRUPT, f"The PDF's page tree cannot be read: {exc}") from exc

    def pages(self, selection: list[int] | None = None, *, native_layout: bool = False) -> Iterator[Page]:
        for number in selection or range(1, self.page_count + 1):
            try:
                yield self._page(number, native_layout)
            except DocumentError:
                raise
            except Exception as exc:
                raise DocumentError(
                    DOCUMENT_CORRUPT, f"Page {number} of the PDF cannot be read: {exc}", page=number
                ) from exc

    def _page(self, number: int, native_layout: bool) -> Page:
        page = self._doc.load_page(number - 1)
        rect = page.rect
        zoom = self.limits.dpi / 72
        long_side = max(rect.width, rect.height)
        if long_side * zoom > self.limits.max_long_side:
            zoom = self.limits.max_long_side / long_side
        pixmap = page.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), colorspace=pymupdf.csRGB, alpha=False)
        textpage = page.get_textpage()
        words = _pdf_words(page, textpage)
        pictures = _pictures(page)
        born_digital = _has_usable_text(page, words, pictures)
        return Page(
            number=number,
            width=rect.width,
            height=rect.height,
            kind="born_digital" if born_digital else "scanned",
            pixmap=pixmap,
            dpi=zoom * 72,
            words=words if born_digital else [],
            native_regions=pdf_layout(page, textpage) if born_digital and native_layout else None,
            pictures=[p for p in pictures if _area(p) >= MIN_PICTURE_AREA] if born_digital else [],
        )

    def close(self) -> None:
        self._doc.close()


def _pdf_words(page: Any, textpage: Any) -> list[Word]:
    """Text-layer words in MuPDF's reading order (block, line, word), boxes normalised to the
    page as displayed (rotation applied)."""
    rect, rotation = page.rect, page.rotation_matrix
    width, height = rect.width or 1.0, rect.height or 1.0
    words: list[Word] = []
    line_index = -1
    last_line: tuple[int, int] | None = None
    rotated = bool(page.rotation)
    for *coords, text, block, line, _ in page.get_text("words", textpage=textpage):
        if (block, line) != last_line:
            line_index += 1
            last_line = (block, line)
        x0, y0, x1, y1 = pymupdf.Rect(*coords) * rotation if rotated else coords
        words.append(
            Word(
                text,
                clamp_box(x0 / width, y0 / height, x1 / width, y1 / height),
                1.0,
                "pdf",
                line_index,
                block,
            )
        )
    return words


_GARBAGE = re.compile("[\x00-\x1f\x7f-\x9f\ufffd\ue000-\uf8ff\ud800-\udfff]")


def _garbage_ratio(text: str) -> float:
    """Share of characters no font should produce: control, replacement, private-use, surrogates."""
    if not text:
        return 1.0
    return len(_GARBAGE.findall(text)) / len(text)


def _pictures(page: Any) -> list[BBox]:
    """Normalised boxes of the images drawn on the page (empty without image resources: cheap)."""
    if not page.get_images():
        return []
    rect = page.rect
    boxes = []
    for info in page.get_image_info():
        box = pymupdf.Rect(info["bbox"])
        if page.rotation:
            box = box * page.rotation_matrix
        box &= rect
        if not box.is_empty:
            boxes.append(
                clamp_box(
                    box.x0 / rect.width, box.y0 / rect.height, box.x1 / rect.width, box.y1 / rect.height
                )
            )
    return boxes


def _area(box: BBox) -> float:
    return (box[2] - box[0]) * (box[3] - box[1])


def _has_usable_text(page: Any, words: list[Word], pictures: list[BBox]) -> bool:
    """Born-digital unless the text layer is empty, garbage, or invisible over a scanned image."""
    text = "".join(w.text for w in words)
    if len(text) < MIN_TEXT_CHARS or _garbage_ratio(text) > MAX_GARBAGE_RATIO:
        return False
    if sum(_area(p) for p in pictures) < SCAN_IMAGE_COVERAGE:
        return True
    spans = page.get_texttrace()
    total = sum(len(span["chars"]) for span in spans) or 1
    invisible = sum(len(span["chars"]) for span in spans if span["type"] == 3 or span["opacity"] == 0)
    return invisible / total <= MAX_INVISIBLE_RATIO


def pdf_layout(page: Any, textpage: Any) -> list[Region]:
    """Regions from the PDF's own structure: text and title blocks, images, tables, and blocks in
    the top/bottom margins as header/footer. Labels follow PP-DocLayoutV3's vocabulary."""
    rect = page.rect
    width, height = rect.width or 1.0, rect.height or 1.0
    found: list[tuple[str, pymupdf.Rect, float]] = []
    # The table finder follows ruled lines; without vector drawings it finds nothing, slowly.
    tables = [pymupdf.Rect(t.bbox) for t in page.find_tables().tables] if page.get_cdrawings() else []
    found.extend(("table", t, 1.0) for t in tables)
    blocks = page.get_text("dict", textpage=textpage)["blocks"]
    sizes = sorted(
        span["size"] for b in blocks if b["type"] == 0 for ln in b["lines"] for span in ln["spans"]
    )
    body = sizes[len(sizes) // 2] if sizes else 10.0
    for block in blocks:
        box = pymupdf.Rect(block["bbox"])
        if any(_inside(box, t) for t in tables):
            continue
        if block["type"] == 1:
            found.append(("image", box, 1.0))
            continue
        spans = [span for ln in block["lines"] for span in ln["spans"] if span["text"].strip()]
        if not spans:
            continue
        if box.y1 <= height * 0.07:
            label = "header"
        elif box.y0 >= height * 0.93:
            label = "footer"
        elif max(s["size"] for s in spans) >= body * 1.3 and len(block["lines"]) <= 2:
            label = "doc_title" if not any(lbl == "doc_title" for lbl, _, _ in found) else "paragraph_title"
        else:
            label = "text"
        found.append((label, box, 1.0))
    regions = []
    for label, box, score in found:
        shown = box * page.rotation_matrix if page.rotation else box
        regions.append(
            (
                label,
                clamp_box(shown.x0 / width, shown.y0 / height, shown.x1 / width, shown.y1 / height),
                score,
            )
        )
    regions.sort(key=lambda r: (round(r[1][1] * 200), r[1][0]))  # top-to-bottom, then left-to-right
    return [Region(label, box, score, order) for order, (label, box, score) in enumerate(regions)]


def _inside(inner: Any, outer: Any) -> bool:
    overlap = abs(inner & outer)
    return bool(overlap > 0.8 * (abs(inner) or 1.0))


class ImageDocument(Document):
    """PNG, JPEG, WebP (one page) or TIFF (one page per frame).

    The memory of one page is bounded by the page's resolution (long side ``max_long_side``, what OCR
    and the engines read), not by the file's: a page is made straight at that resolution and no
    full-resolution copy is kept. JPEG frames are decoded at reduced scale by libjpeg (1/2, 1/4 or
    1/8, so each side is less than twice the page's: ``Image.draft``); formats that cannot decode
    at reduced scale (PNG, WebP, TIFF) are decoded once at full size, at most ``max_pixels`` x 4
    bytes, and reduced at once without a converted full-size copy (see :func:`_shrink`). Beyond that
    decoded frame a page costs a few images of its own size (about 37 MB each for 3500 x 2625 RGB);
    the frame is let go before the page is handed out.
    """

    def __init__(self, data: bytes, kind: DocumentType, limits: IngestLimits) -> None:
        self.type = kind
        self.limits = limits
        self._data = data
        with self._open() as header:  # reads the header only
            self._check_pixels(header.size)
            self.page_count = getattr(header, "n_frames", 1)

    def _open(self) -> Image.Image:
        """A fresh decoder over the file (each page gets its own, so no decoded frame outlives
        its page; reaching frame n re-reads n small TIFF headers, negligible beside OCR)."""
        try:
            return Image.open(io.BytesIO(self._data))
        except Image.DecompressionBombError as exc:
            # Pillow's own guard (far above ours by default) tripped: quote the service's limit.
            raise self._too_large("The image") from exc
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise DocumentError(DOCUMENT_CORRUPT, f"The image cannot be read: {exc}") from exc

    def _max_pixels(self) -> int:
        """The limit in force: ours, or Pillow's refusal to open bombs if a deployment set ours above it."""
        pillow = Image.MAX_IMAGE_PIXELS
        return min(self.limits.max_pixels, 2 * pillow) if pillow else self.limits.max_pixels

    def _too_large(self, what: str) -> DocumentError:
        limit = self._max_pixels()
        return DocumentError(
            IMAGE_TOO_LARGE, f"{what} has more pixels than the limit of {limit}.", limit_pixels=limit
        )

    def _check_pixels(self, size: tuple[int, int]) -> None:
        pixels = size[0] * size[1]
        if pixels > self.limits.max_pixels:
            raise DocumentError(
                IMAGE_TOO_LARGE,
                f"The image is {size[0]}x{size[1]} = {pixels} pixels; the limit is {self.limits.max_pixels}.",
                limit_pixels=self.limits.max_pixels,
            )

    def pages(self, selection: list[int] | None = None, *, native_layout: bool = False) -> Iterator[Page]:
        for number in selection or range(1, self.page_count + 1):
            try:
                page = self._page(number)
            except DocumentError:
                raise
            except Image.DecompressionBombError as exc:
                raise DocumentError(
                    IMAGE_TOO_LARGE,
                    f"Page {number} has more pixels than the limit of {self._max_pixels()}.",
                    limit_pixels=self._max_pixels(),
                    page=number,
                ) from exc
            except (OSError, ValueError, EOFError, SyntaxError) as exc:
                raise DocumentError(
                    DOCUMENT_CORRUPT, f"Page {number} of the image cannot be decoded: {exc}", page=number
                ) from exc
            yield page

    def _page(self, number: int) -> Page:
        with self._open() as source:
            source.seek(number - 1)
            self._check_pixels(source.size)
            width, height = source.size
            scale = min(1.0, self.limits.max_long_side / max(width, height))
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            source.draft(None, size)  # JPEG: decode at the smallest DCT scale not below ``size``
            image = _shrink(source, size)
            orientation = source.getexif().get(ExifTags.Base.Orientation, 1)  # after decoding: PNG
            dpi = source.info.get("dpi")
        if orientation in _EXIF_TRANSPOSE:  # as ImageOps.exif_transpose, on the small image
            image = image.transpose(_EXIF_TRANSPOSE[orientation])
        return Page(
            number=number,
            width=image.width,
            height=image.height,
            kind="image",
            image=image,
            dpi=float(dpi[0]) * scale if dpi and dpi[0] else None,
        )

    def close(self) -> None:
        """Nothing to release: each page's decoder is closed once the page is made."""


# EXIF Orientation -> the transposition that shows the image upright (as in ImageOps.exif_transpose).
_EXIF_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# Rows of a large image converted to RGB at a time by _shrink: its scratch memory is one band.
_BAND_ROWS = 512


def _shrink(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """``image`` as RGB on white at ``size`` (at most its own), without a full-size converted copy.

    First a box average by the largest whole factor that stays at or above ``size``
    (``Image.reduce``: cheap, and it averages thin strokes instead of dropping them), then Lanczos
    to ``size`` exactly. RGB and greyscale are reduced as decoded; other modes (palette, alpha,
    bilevel, 16-bit, CMYK) are converted band by band, so conversion never copies the whole frame.
    """
    if image.size == size:
        return _to_rgb(image)
    width, height = image.size
    factor = max(1, min(width // size[0], height // size[1]))
    if image.mode in ("RGB", "L"):
        image.load()
        reduced = image.reduce(factor) if factor > 1 else image
    else:
        rows = max(1, _BAND_ROWS // factor) * factor  # whole multiples of the factor: bands tile exactly
        reduced = Image.new("RGB", (-(-width // factor), -(-height // factor)))
        for top in range(0, height, rows):
            band = _to_rgb(image.crop((0, top, width, min(height, top + rows))))
            reduced.paste(band.reduce(factor) if factor > 1 else band, (0, top // factor))
    resized = reduced.resize(size, Image.Resampling.LANCZOS)
    return resized if resized.mode == "RGB" else _to_rgb(resized)


def _to_rgb(image: Image.Image) -> Image.Image:
    """RGB on white: transparency flattened, palettes, greyscale, CMYK and 16-bit converted."""
    image.load()
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        image = image.point(lambda v: v / 256).convert("L")
    return image.convert("RGB")
