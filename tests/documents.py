"""Documents made in code for the tests: an invoice with known words at known places, its raster
("scan"), a photo with EXIF orientation, and the hostile and broken files ingest must refuse."""

from __future__ import annotations

import io
import zlib
from dataclasses import dataclass

import pymupdf
from PIL import Image

PAGE_W, PAGE_H = 595.0, 842.0  # A4 in points
FONT_SIZE = 11

INVOICE_LINES: list[tuple[float, float, str]] = [
    (60, 70, "ACME Supplies GmbH"),
    (60, 86, "Hauptstrasse 12, 10115 Berlin"),
    (360, 70, "Invoice No. INV-2024-0042"),
    (360, 86, "Date 2024-03-15"),
    (60, 140, "Bill to: Globex Corporation"),
    (60, 156, "742 Evergreen Terrace"),
    (60, 172, "Springfield Oregon 97403"),
    (60, 230, "Description Qty Price Amount"),
    (60, 250, "Widget large 2 10.00 20.00"),
    (60, 266, "Gadget small 5 4.50 22.50"),
    (360, 320, "Subtotal 42.50"),
    (360, 336, "VAT 19% 8.08"),
    (360, 352, "Total EUR 50.58"),
    (60, 420, "IBAN DE89370400440532013000"),
]


@dataclass(frozen=True)
class DrawnWord:
    text: str
    page: int
    bbox: tuple[float, float, float, float]  # normalised, from the font metrics at drawing time


def invoice_pdf(
    pages: int = 1, lines: list[tuple[float, float, str]] | None = None
) -> tuple[bytes, list[DrawnWord]]:
    """A born-digital invoice (Helvetica) and where every word was drawn."""
    doc = pymupdf.open()
    drawn: list[DrawnWord] = []
    font = pymupdf.Font("helv")
    for number in range(1, pages + 1):
        page = doc.new_page(width=PAGE_W, height=PAGE_H)
        for x, y, text in lines or INVOICE_LINES:
            page.insert_text((x, y), text, fontsize=FONT_SIZE, fontname="helv")
            cursor = x
            for word in text.split(" "):
                width = font.text_length(word, fontsize=FONT_SIZE)
                drawn.append(
                    DrawnWord(
                        word,
                        number,
                        (
                            cursor / PAGE_W,
                            (y - FONT_SIZE * font.ascender) / PAGE_H,
                            (cursor + width) / PAGE_W,
                            (y - FONT_SIZE * font.descender) / PAGE_H,
                        ),
                    )
                )
                cursor += width + font.text_length(" ", fontsize=FONT_SIZE)
    return doc.tobytes(), drawn


def rasterise(pdf: bytes, dpi: int = 200, fmt: str = "PNG") -> bytes:
    """The first page as an image file: a "scan" with no text layer."""
    doc = pymupdf.open(stream=pdf, filetype="pdf")
    pixmap = doc[0].get_pixmap(dpi=dpi)
    image = Image.frombytes("RGB", (pixmap.width, pixmap.height), pixmap.samples)
    out = io.BytesIO()
    image.save(out, fmt, dpi=(dpi, dpi))
    return out.getvalue()


def scanned_pdf(pdf: bytes, dpi: int = 150) -> bytes:
    """A PDF whose page is only an image of the invoice (like a scanner makes)."""
    png = rasterise(pdf, dpi)
    doc = pymupdf.open()
    page = doc.new_page(width=PAGE_W, height=PAGE_H)
    page.insert_image(page.rect, stream=png)
    return bytes(doc.tobytes())


def scanned_pdf_with_invisible_text(pdf: bytes) -> bytes:
    """A scan with an invisible OCR layer on top (render mode 3), as OCR software produces."""
    doc = pymupdf.open(stream=scanned_pdf(pdf), filetype="pdf")
    page = doc[0]
    for x, y, text in INVOICE_LINES:
        page.insert_text((x, y), text, fontsize=FONT_SIZE, render_mode=3)
    return bytes(doc.tobytes())


def photo_with_exif_orientation(pdf: bytes) -> bytes:
    """A JPEG stored rotated 90 degrees, with EXIF Orientation=6 saying how to turn it upright."""
    upright = Image.open(io.BytesIO(rasterise(pdf, 100)))
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # what the camera wrote
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW to display
    out = io.BytesIO()
    stored.save(out, "JPEG", exif=exif, quality=90)
    return out.getvalue()


def multipage_tiff(pdf: bytes, pages: int = 3) -> bytes:
    frame = Image.open(io.BytesIO(rasterise(pdf, 72)))
    out = io.BytesIO()
    frame.save(out, "TIFF", save_all=True, append_images=[frame.copy() for _ in range(pages - 1)])
    return out.getvalue()


def encrypted_pdf(pdf: bytes, password: str) -> bytes:
    doc = pymupdf.open(stream=pdf, filetype="pdf")
    return bytes(
        doc.tobytes(encryption=pymupdf.PDF_ENCRYPT_AES_256, owner_pw=password + "-owner", user_pw=password)
    )


def pdf_with_xml_attachment(pdf: bytes, xml: bytes) -> bytes:
    """Like a ZUGFeRD/Factur-X invoice: the PDF carries an XML file that is not printed."""
    doc = pymupdf.open(stream=pdf, filetype="pdf")
    doc.embfile_add("factur-x.xml", xml, filename="factur-x.xml", desc="hidden invoice data")
    page = doc[0]
    page.add_file_annot(pymupdf.Point(500, 800), xml, "attached.xml")
    return bytes(doc.tobytes())


def png_header_only(width: int, height: int) -> bytes:
    """A tiny file that claims an enormous image (a decompression bomb's header)."""
    out = io.BytesIO()
    Image.new("1", (1, 1)).save(out, "PNG")
    data = bytearray(out.getvalue())
    data[16:20] = width.to_bytes(4, "big")
    data[20:24] = height.to_bytes(4, "big")
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")  # keep the IHDR chunk valid
    return bytes(data)


def garbage_text_pdf() -> bytes:
    """A page whose font has no Unicode mapping: its text layer extracts as control characters."""
    doc = pymupdf.open()
    page = doc.new_page(width=PAGE_W, height=PAGE_H)
    font = doc.get_new_xref()
    doc.update_object(
        font,
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding << /Type /Encoding "
        "/Differences [1 /g1 /g2 /g3 /g4 /g5 /g6 /g7 /g8] >> >>",
    )
    doc.xref_set_key(page.xref, "Resources", f"<< /Font << /F1 {font} 0 R >> >>")
    content = doc.get_new_xref()
    doc.update_object(content, "<< >>")
    doc.update_stream(
        content, b"BT /F1 12 Tf 72 720 Td (\\001\\002\\003\\004\\005\\006\\007\\010 \\001\\002\\003) Tj ET"
    )
    doc.xref_set_key(page.xref, "Contents", f"{content} 0 R")
    return bytes(doc.tobytes())


ZERO_PAGE_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)


def pdf_with_text_picture(picture_text: str = "Issuer Picture Company BV") -> bytes:
    """A born-digital invoice whose letterhead is a picture of text (not in the text layer)."""
    letterhead = pymupdf.open()
    page = letterhead.new_page(width=300, height=60)
    page.insert_text((10, 35), picture_text, fontsize=16)
    png = letterhead[0].get_pixmap(dpi=200).tobytes("png")
    pdf, _ = invoice_pdf()
    doc = pymupdf.open(stream=pdf, filetype="pdf")
    doc[0].insert_image(pymupdf.Rect(60, 700, 360, 760), stream=png)
    return bytes(doc.tobytes())
