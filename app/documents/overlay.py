"""Pictures and text of what the text map found, for a person to check."""

from __future__ import annotations

from PIL import Image, ImageDraw

from app.pages import Page, Region, Word

REGION_COLOURS = {
    "table": (0, 128, 255),
    "doc_title": (200, 0, 200),
    "paragraph_title": (200, 0, 200),
    "header": (120, 120, 120),
    "footer": (120, 120, 120),
    "image": (0, 170, 0),
    "seal": (0, 170, 0),
}
WORD_COLOURS = {"pdf": (255, 140, 0), "ocr": (220, 0, 0)}


def draw_overlay(page: Page, regions: list[Region]) -> Image.Image:
    """The page with regions (thick, labelled with order and label) and words (thin) drawn on it."""
    image = page.image.copy()
    draw = ImageDraw.Draw(image)
    w, h = image.size
    for word in page.words:
        x0, y0, x1, y1 = word.bbox
        draw.rectangle((x0 * w, y0 * h, x1 * w, y1 * h), outline=WORD_COLOURS[word.source], width=1)
    for region in regions:
        x0, y0, x1, y1 = region.bbox
        colour = REGION_COLOURS.get(region.label, (0, 90, 200))
        draw.rectangle((x0 * w, y0 * h, x1 * w, y1 * h), outline=colour, width=3)
        draw.text(
            (x0 * w + 4, max(0, y0 * h - 12)),
            f"{region.order} {region.label} {region.score:.2f}",
            fill=colour,
        )
    return image


def page_text(words: list[Word]) -> str:
    """The words in reading order, one printed line per line."""
    lines: list[str] = []
    current = None
    for word in words:
        if word.line != current:
            lines.append(word.text)
            current = word.line
        else:
            lines[-1] += " " + word.text
    return "\n".join(lines)
