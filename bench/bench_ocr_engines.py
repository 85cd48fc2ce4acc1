"""Compare OCR engines by measurement, to choose the default: accuracy on generated pages with known
text (six languages; clean A4 and damaged receipts) and on real receipts, speed, model load, memory.

    .venv/bin/python bench/bench_ocr_engines.py --generated 12 --corpus ../shared/corpus --limit 20 \\
        --json /tmp/ocr_engines.json                                   # every engine, 52 pages each
    .venv/bin/python bench/bench_ocr_engines.py --engines rapidocr-v4 --generated 2 \\
        --corpus ../shared/corpus --limit 2                            # smoke test

(``--engines`` defaults to every key of ``app.ocr.engines.OCR_ENGINES``, ``--threads`` to the CPUs we
may use.) Pages are generated once, seeded, and handed to the engines as PNG files; each engine runs in
its own subprocess (this script with ``--worker``), so its peak RSS is its own. Model load (build +
first call on a small text image) is timed apart; pages/s is serial wall clock over ``recognize``, so
run it on an otherwise idle machine.

Generated pages: the known text has one line per visual row, so the OCR lines are grouped into rows by
their boxes (joined by " " within a row) before comparing. CER on the page text (rows joined by "\\n",
whitespace collapsed); WER on whitespace tokens (a glued "SAMSAM" for "SAM SAM" is 2 errors); accent
recall: known words with non-ASCII letters found exactly among the OCR words; digit error: known tokens
with a digit not found as a whole OCR word (both multisets; punctuation at the token's edges ignored).
Real receipts: share of label values found as a substring of the OCR rows joined by "\\n" or by " ",
exact and with whitespace removed (WildReceipt labels have no spaces: both columns are space-free), and
exact for values with digits. "conf num ok/wrong": mean confidence of OCR words with a digit that are
right / wrong on generated pages (does the score tell a misread number?).
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont
from rapidfuzz.distance import Levenshtein

from app.ocr.engine import OcrLine, available_cpus, lines_to_words
from app.pages import Word
from bench.page_layout import Cell, Row, Typeface, draw_page

DPI = 200
LANGS = ("en", "de", "fr", "es", "it", "nl")
EDGE = "\"'()[]{}:;,.!?¡¿«»"  # punctuation at a token's edges, ignored when matching words
LEXICON = {  # field=value|...; items are ";"-separated
    "en": "title=Invoice|no=Invoice No.|date=Date of issue|seller=Crème & Co. Ltd|street=221 Baker Street, "
    "London NW1 6XE|buyer=Bill to|client=Naïve Café Ltd|cur=Currency|desc=Description|qty=Qty|price=Unit "
    "price|amount=Amount|sub=Subtotal|vat=VAT 20%|total=Amount due|vat_id=VAT No.|receipt=RECEIPT|thanks="
    "Thank you for your business!|cc=GB|items=Consulting services;Crème brûlée x 2;Printer paper A4;"
    "Steel bolts M8 x 40;Café latte;Shipping and handling",
    "de": "title=Rechnung|no=Rechnungsnummer|date=Rechnungsdatum|seller=Müller GmbH|street=Hauptstraße 12, "
    "80331 München|buyer=Käufer|client=Bäckerei Schäfer KG|cur=Währung|desc=Beschreibung|qty=Menge|price="
    "Einzelpreis|amount=Betrag|sub=Zwischensumme|vat=MwSt. 19 %|total=Gesamtbetrag|vat_id=USt-IdNr.|"
    "receipt=Kassenbon|thanks=Vielen Dank für Ihren Einkauf!|cc=DE|items=Schrauben M8 verzinkt;"
    "Kaffee gemahlen 500 g;Brötchen;Äpfel Elstar 1 kg;Süßwaren gemischt;Überweisungsgebühr",
    "fr": "title=Facture|no=Facture n°|date=Date d'émission|seller=Société Générale de Négoce|street=12 rue "
    "de la Paix, 75002 Paris|buyer=Client|client=Café de la Gare SARL|cur=Devise|desc=Désignation|qty=Qté|"
    "price=Prix unitaire|amount=Montant|sub=Total HT|vat=TVA 20 %|total=Total à payer|vat_id=N° TVA|"
    "receipt=Reçu de caisse|thanks=Merci, conservez votre reçu|cc=FR|items=Crème brûlée;Pâtes fraîches;"
    "Thé vert bio;Prestation de conseil;Frais de livraison;Gâteau au chocolat",
    "es": "title=Factura|no=Número de factura|date=Fecha de emisión|seller=Panadería Muñoz S.L.|street="
    "Calle Mayor 5, 28013 Madrid|buyer=Cliente|client=Distribuciones Ibáñez S.A.|cur=Moneda|desc="
    "Descripción|qty=Cant.|price=Precio unitario|amount=Importe|sub=Base imponible|vat=IVA 21 %|total="
    "Total a pagar|vat_id=NIF|receipt=Ticket de compra|thanks=¡Gracias por su compra!|cc=ES|items=Café con "
    "leche;Jamón ibérico 100 g;Piña natural;Envío urgente;Servicio técnico;Pimentón dulce",
    "it": "title=Fattura|no=Numero fattura|date=Data di emissione|seller=Pasticceria Bianchi S.r.l.|street="
    "Via Roma 10, 00184 Roma|buyer=Cliente|client=Caffè Città di Torino|cur=Valuta|desc=Descrizione|qty="
    "Quantità|price=Prezzo unitario|amount=Importo|sub=Imponibile|vat=IVA 22 %|total=Importo totale|"
    "vat_id=Partita IVA|receipt=Scontrino|thanks=Grazie e arrivederci, più sconti in cassa|cc=IT|items="
    "Caffè espresso;Cornetto alla crema;Tè freddo;Consulenza tecnica;Spedizione;Liquore al caffè",
    "nl": "title=Factuur|no=Factuurnummer|date=Factuurdatum|seller=Coöperatie De Eendracht U.A.|street="
    "Keizersgracht 123, 1015 CJ Amsterdam|buyer=Klant|client=Café 't Hoekje|cur=Valuta|desc=Omschrijving|"
    "qty=Aantal|price=Stukprijs|amount=Bedrag|sub=Subtotaal|vat=BTW 21%|total=Totaalbedrag|vat_id="
    "BTW-nummer|receipt=Kassabon|thanks=Bedankt voor uw bezoek, tot ziens|cc=NL|items=Koffie verkeerd;"
    "Appeltaart;Crème fraîche;Verzendkosten;Advieswerk;Tosti ham kaas",
}
DATES = {"en": "%Y-%m-%d", "de": "%d.%m.%Y", "fr": "%d/%m/%Y", "es": "%d/%m/%Y", "it": "%d/%m/%Y"}
A4_WIDTH, A4_HEIGHT, RECEIPT_WIDTH = 595.0, 842.0, 226.0  # points; a receipt is 80 mm wide


# --- metrics (pure) ---------------------------------------------------------------------------------


def collapse(text: str) -> str:
    return " ".join(text.split())


def visual_rows(lines: Sequence[OcrLine]) -> list[str]:
    """The lines' texts grouped into rows (top to bottom; left to right, joined by " ", in a row).

    A line joins the current row when its vertical centre is within half a line height of the row's
    mean centre; this makes the comparison independent of how an engine splits or orders a row."""
    rows: list[list[OcrLine]] = []
    for line in sorted(lines, key=lambda ln: (ln.bbox[1] + ln.bbox[3], ln.bbox[0])):
        centre, height = (line.bbox[1] + line.bbox[3]) / 2, line.bbox[3] - line.bbox[1]
        if rows:
            row_centre = sum(m.bbox[1] + m.bbox[3] for m in rows[-1]) / 2 / len(rows[-1])
            row_height = sum(m.bbox[3] - m.bbox[1] for m in rows[-1]) / len(rows[-1])
            if abs(centre - row_centre) <= (row_height + height) / 4:
                rows[-1].append(line)
                continue
        rows.append([line])
    texts = (collapse(" ".join(m.text for m in sorted(row, key=lambda m: m.bbox[0]))) for row in rows)
    return [text for text in texts if text]


def page_text(rows: Sequence[str]) -> str:
    return "\n".join(text for text in (collapse(row) for row in rows) if text)


def char_errors(known: str, ocr: str) -> tuple[int, int]:
    """(edit distance, known length) on characters: CER = errors / length."""
    return Levenshtein.distance(known, ocr), len(known)


def word_errors(known: str, ocr: str) -> tuple[int, int]:
    """(edit distance, known tokens) on whitespace tokens, so spaces matter: "SAMSAM" vs "SAM SAM" is 2."""
    tokens = known.split()
    return Levenshtein.distance(tokens, ocr.split()), len(tokens)


def _tokens(words: Sequence[str]) -> list[str]:
    return [t for t in (w.strip(EDGE) for w in words) if t]


def accent_hits(known: str, ocr_words: Sequence[str]) -> tuple[int, int]:
    """(found, total) known words with a non-ASCII letter that are also OCR words, as multisets."""
    wanted = Counter(t for t in _tokens(known.split()) if any(c.isalpha() and not c.isascii() for c in t))
    return sum((wanted & Counter(_tokens(ocr_words))).values()), sum(wanted.values())


def numeric_tokens(words: Sequence[str]) -> Counter[str]:
    return Counter(t for t in _tokens(words) if any(c.isdigit() for c in t))


def digit_misses(known: str, ocr_words: Sequence[str]) -> tuple[int, int]:
    """(missed, total) known tokens with a digit not reproduced exactly as an OCR word: "5,47" read as
    "5.417" or "5, 47" is missed."""
    wanted = numeric_tokens(known.split())
    return sum((wanted - numeric_tokens(ocr_words)).values()), sum(wanted.values())


def numeric_confidences(known: str, words: Sequence[Word]) -> tuple[list[float], list[float]]:
    """Confidences of OCR words with a digit that are right (a known numeric token) and wrong."""
    remaining, right, wrong = numeric_tokens(known.split()), list[float](), list[float]()
    for word in words:
        token = word.text.strip(EDGE)
        if any(c.isdigit() for c in token):
            (right if remaining[token] > 0 else wrong).append(word.confidence)
            remaining[token] -= 1
    return right, wrong


def value_found(value: str, rows: Sequence[str], *, spaces: bool) -> bool:
    """Whether ``value`` is a substring of the rows joined by "\\n" or by " " (multi-line values),
    ignoring case (SROIE's labels are upper case where the receipt prints "Jalan Tampoi"); without
    ``spaces``, whitespace is removed from both sides first."""
    value, rows = value.casefold(), [row.casefold() for row in rows]
    texts = ["\n".join(rows), " ".join(rows)]
    if not spaces:
        value, texts = "".join(value.split()), ["".join(text.split()) for text in texts]
    return any(value in text for text in texts)


def _rate(pairs: Sequence[tuple[int, int]]) -> float | None:
    total = sum(n for _, n in pairs)
    return sum(e for e, _ in pairs) / total if total else None


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


# --- inputs ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One page to OCR: a generated one with ``lines`` (known text) or a corpus one with ``values``."""

    name: str
    set: str
    path: Path
    lines: tuple[str, ...] = ()
    values: tuple[tuple[str, str], ...] = ()  # (field, printed value)


def money(value: float, comma: bool) -> str:
    text = f"{value:,.2f}"
    return text.translate(str.maketrans(",.", ".,")) if comma else text


def wrap(text: str, width: float, face: Typeface, size: float) -> list[str]:
    lines: list[str] = []
    for word in text.split():
        if lines and face.width(f"{lines[-1]} {word}", size) <= width:
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    return lines


@dataclass(frozen=True)
class Facts:
    """What one generated document says, before any layout."""

    lex: dict[str, str]
    comma: bool  # decimal comma: 1.234,56
    date: str
    number: str
    vat_id: str
    iban: str
    currency: str
    items: list[tuple[str, int, float]]  # name, quantity, unit price
    totals: list[tuple[str, str]]  # label, printed amount


def facts(lang: str, receipt: bool, rng: random.Random) -> Facts:
    lex = {k: v for k, _, v in (part.partition("=") for part in LEXICON[lang].split("|"))}
    comma, cc = lang != "en", lex["cc"]
    day = datetime.date(rng.randint(2015, 2025), rng.randint(1, 12), rng.randint(1, 28))
    date = day.strftime(DATES.get(lang, "%d-%m-%Y"))
    if receipt or lang in {"fr", "it"}:
        date += f" {rng.randint(7, 22)}:{rng.randint(0, 59):02d}"
    number = rng.choice(["RE-{y}-{n:05d}", "F{y}/{n:04d}", "INV-{y}-{n:04d}"])
    vat_id = f"{lex['vat_id']} {cc}{rng.randint(10**8, 10**9 - 1)}{'B01' if cc == 'NL' else ''}"
    groups = " ".join(f"{rng.randint(0, 9999):04d}" for _ in range(4))
    names = rng.sample(lex["items"].split(";"), k=rng.randint(3, 6))
    top = 3000 if receipt else 99999
    items = [(n, rng.randint(1, 4 if receipt else 20), rng.randint(50, top) / 100) for n in names]
    subtotal = sum(q * p for _, q, p in items)
    vat = round(subtotal * int("".join(c for c in lex["vat"] if c.isdigit())) / 100, 2)
    code, symbol = ("GBP", "£") if cc == "GB" else ("EUR", "€")
    total = rng.choice([f"{symbol} {{}}", f"{code} {{}}", f"{{}} {symbol}" if comma else f"{symbol}{{}}"])
    amounts = (money(subtotal, comma), money(vat, comma), total.format(money(subtotal + vat, comma)))
    totals = list(zip((lex["sub"], lex["vat"], lex["total"]), amounts, strict=True))
    iban = f"IBAN {cc}{rng.randint(10, 99)} {groups} 00"
    number = number.format(y=day.year, n=rng.randint(1, 9999))
    return Facts(lex, comma, date, number, vat_id, iban, code, items, totals)


def receipt_rows(f: Facts, face: Typeface, size: float) -> list[Row]:
    """An 80 mm till receipt: centred header, item lines with amounts on the right, totals."""
    left, right = 10.0, RECEIPT_WIDTH - 10

    def pair(label: str, value: str, bold: bool = False) -> list[Row]:
        cells = (Cell(label, left), Cell(value, right, "right"))
        if face.width(f"{label}  {value}", size, bold) < right - left:
            return [Row(cells, size, bold)]
        return [Row(cells[:1], size, bold), Row(cells[1:], size, bold)]

    def centred(text: str, bold: bool = False, space: float = 1.0) -> list[Row]:
        lines = wrap(text, right - left, face, size)
        return [Row((Cell(line, RECEIPT_WIDTH / 2, "center"),), size, bold, space) for line in lines]

    rows = centred(f.lex["seller"], bold=True) + [r for p in f.lex["street"].split(", ") for r in centred(p)]
    rows += centred(f.vat_id) + centred(f.lex["receipt"], bold=True, space=1.6) + pair(f.date, f"#{f.number}")
    for name, qty, price in f.items:
        rows += pair(name, money(qty * price, f.comma))
        if qty > 1:
            rows.append(Row((Cell(f"{qty} x {money(price, f.comma)}", left + size),), size))
    rows += [r for label, value in f.totals for r in pair(label, value, bold=label == f.lex["total"])]
    return rows + centred(f.lex["thanks"], space=1.6)


def invoice_rows(f: Facts, rng: random.Random, face: Typeface, size: float) -> list[Row]:
    """An A4 invoice: parties and meta data (two layouts), an item table, totals, bank and VAT id."""
    left = rng.uniform(40, 70)
    right = A4_WIDTH - left
    meta = [f"{f.lex['no']}: {f.number}", f"{f.lex['date']}: {f.date}", f"{f.lex['cur']}: {f.currency}"]
    address = [*f.lex["street"].split(", "), f"Tel. +{rng.randint(30, 49)} {rng.randint(10**7, 10**8 - 1)}"]
    rows = [Row((Cell(f.lex["seller"], left), Cell(f.lex["title"], right, "right")), size + 4, bold=True)]
    if rng.random() < 0.5:  # address and meta side by side, or meta below on the right
        rows += [
            Row((Cell(a, left), Cell(m, right, "right")), size) for a, m in zip(address, meta, strict=True)
        ]
    else:
        rows += [Row((Cell(a, left),), size) for a in address]
        rows += [Row((Cell(m, right, "right"),), size, space=1.6 - 0.6 * bool(i)) for i, m in enumerate(meta)]
    rows.append(Row((Cell(f"{f.lex['buyer']}: {f.lex['client']}", left),), size, space=2.0))
    gap, widest = 1.5 * size, money(999999.99, f.comma)
    edges = [right]  # right edges of the amount, price and quantity columns, then the quantity's left edge
    for header, sample in ((f.lex["amount"], widest), (f.lex["price"], widest), (f.lex["qty"], "20")):
        edges.append(edges[-1] - max(face.width(header, size, True), face.width(sample, size)) - gap)

    def table_row(first: str, rest: Sequence[str], bold: bool = False, space: float = 1.0) -> Row:
        cells = (Cell(t, x, "right") for t, x in zip(rest, edges[2::-1], strict=True))
        return Row((Cell(first, left), *cells), size, bold, space)

    rows.append(table_row(f.lex["desc"], (f.lex["qty"], f.lex["price"], f.lex["amount"]), True, 2.0))
    rows += [table_row(n, (str(q), money(p, f.comma), money(q * p, f.comma))) for n, q, p in f.items]
    for i, (label, value) in enumerate(f.totals):
        cells = (Cell(label, edges[3] + gap), Cell(value, right, "right"))
        rows.append(Row(cells, size, bold=i == 2, space=1.8 if i == 0 else 1.0))
    footer = (f.iban, f.vat_id, f.lex["thanks"])
    return rows + [Row((Cell(t, left),), size, space=2.5 if i == 0 else 1) for i, t in enumerate(footer)]


def render(rows: Sequence[Row], receipt: bool, face: Typeface) -> tuple[Image.Image, tuple[str, ...]]:
    """The page image at DPI and its known lines (a row's cells, left to right, joined by " ")."""
    width, height = (RECEIPT_WIDTH, None) if receipt else (A4_WIDTH, A4_HEIGHT)
    doc, texts = draw_page(rows, width, height, face, margin=30.0)
    try:
        pix = doc[0].get_pixmap(dpi=DPI)
        return Image.frombytes("RGB", (pix.width, pix.height), pix.samples), tuple(map(collapse, texts))
    finally:
        doc.close()


def damage(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A photographed receipt: downscaled, rotated <= 2 degrees, uneven light, blur, noise, JPEG 40-70."""
    scale = rng.uniform(0.6, 0.85)
    image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
    image = image.rotate(rng.uniform(-2, 2), Image.Resampling.BICUBIC, expand=True, fillcolor="white")
    h, w = image.height, image.width
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.cos(angle) * xx / w + np.sin(angle) * yy / h
    light = 1 - rng.uniform(0.15, 0.35) * (ramp - ramp.min()) / (np.ptp(ramp) or 1)
    tint = np.array([1.0, 0.98, rng.uniform(0.9, 0.97)], dtype=np.float32)
    pixels = np.asarray(image, dtype=np.float32) * light[..., None] * tint
    image = Image.fromarray(pixels.clip(0, 255).astype(np.uint8))
    image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.8)))
    pixels = np.asarray(image, dtype=np.float32) + rng.normal(0, rng.uniform(4, 12), (h, w, 1))
    buffer = io.BytesIO()
    Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(
        buffer, "JPEG", quality=int(rng.integers(40, 71))
    )
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def generate(index: int, folder: Path) -> Sample:
    """Page ``index``: even ones clean A4, odd ones damaged receipts; languages rotate over both."""
    receipt = index % 2 == 1
    lang, rng = LANGS[(index // 2 + index % 2) % len(LANGS)], random.Random(index)
    face = Typeface(rng.choice(["cour", "cour", "helv"] if receipt else ["helv", "tiro", "cour"]))
    size = rng.randint(9, 11) if receipt else rng.randint(8, 14)
    content = facts(lang, receipt, rng)
    rows = receipt_rows(content, face, size) if receipt else invoice_rows(content, rng, face, size)
    image, lines = render(rows, receipt, face)
    if receipt:
        image = damage(image, np.random.default_rng(index))
    name = f"{'receipt' if receipt else 'a4'}-{lang}-{index:02d}"
    image.save(folder / f"{name}.png")
    return Sample(name, "gen-receipt" if receipt else "gen-a4", folder / f"{name}.png", lines=lines)


def corpus(root: Path, dataset: str, limit: int | None) -> list[Sample]:
    """Receipts of ``root/dataset`` with their printed label values (a list per field in WildReceipt)."""
    manifest = json.loads((root / dataset / "_manifest.json").read_text())
    samples = []
    entries = [e for e in manifest["documents"] if (root / dataset / e["file"]).is_file()]
    for entry in entries[:limit]:
        values: list[tuple[str, str]] = []
        for field, raw in entry["source_label"].items():
            for value in raw if isinstance(raw, list) else [raw]:
                if isinstance(value, str) and value.strip() and (field, value.strip()) not in values:
                    values.append((field, value.strip()))
        samples.append(Sample(entry["id"], dataset, root / dataset / entry["file"], values=tuple(values)))
    return samples


# --- running engines ------------------------------------------------------------------------------


def worker(spec_path: Path) -> None:
    """Child process: build one engine, time its load and every page; write the lines, their words
    (:func:`lines_to_words`, after the clock: the engine's own words when it reports them) and peak RSS."""
    from app.ocr.engines import build_ocr_engine

    spec = json.loads(spec_path.read_text())
    warm = Image.new("RGB", (480, 96), "white")
    ImageDraw.Draw(warm).text((16, 24), "Total 12,34 EUR", fill="black", font=ImageFont.load_default(size=40))
    start = time.perf_counter()
    engine = build_ocr_engine(spec["engine"], threads=spec["threads"])
    engine.recognize(warm)
    result: dict[str, Any] = {"load_s": time.perf_counter() - start, "seconds": [], "lines": [], "words": []}
    for path in spec["paths"]:
        with Image.open(path) as opened:
            image = opened.convert("RGB")  # decoded before the clock starts
        start = time.perf_counter()
        lines = engine.recognize(image)
        result["seconds"].append(time.perf_counter() - start)
        result["lines"].append([[line.text, list(line.bbox), line.confidence] for line in lines])
        result["words"].append([[w.text, list(w.bbox), w.confidence, w.line] for w in lines_to_words(lines)])
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    Path(spec["out"]).write_text(json.dumps(result))


def run_engine(engine: str, samples: Sequence[Sample], threads: int, folder: Path) -> dict[str, Any]:
    spec, out = folder / f"{engine}.spec.json", folder / f"{engine}.out.json"
    paths = [str(s.path) for s in samples]
    spec.write_text(json.dumps({"engine": engine, "threads": threads, "paths": paths, "out": str(out)}))
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", str(spec)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0 or not out.exists():
        return {"error": (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]}
    return dict(json.loads(out.read_text()))


def score(pages: Sequence[tuple[Sample, list[OcrLine], list[Word], float]]) -> dict[str, Any]:
    """Every number for one engine on one set: totals, then per page."""
    counts: dict[str, list[tuple[int, int]]] = defaultdict(list)
    confidences: tuple[list[float], list[float]] = ([], [])
    details: list[dict[str, Any]] = []
    for sample, lines, words, took in pages:
        rows = visual_rows(lines)
        detail: dict[str, Any] = {"name": sample.name, "seconds": took, "ocr": page_text(rows)}
        if sample.lines:
            known, ocr, texts = page_text(sample.lines), detail["ocr"], [w.text for w in words]
            page = {"cer": char_errors(known, ocr), "wer": word_errors(known, ocr)}
            page |= {"accent_recall": accent_hits(known, texts), "digit_error": digit_misses(known, texts)}
            for key, pair in page.items():
                counts[key].append(pair)
                detail[key] = _rate([pair])
            right, wrong = numeric_confidences(known, words)
            confidences[0].extend(right)
            confidences[1].extend(wrong)
            detail["known"] = known
        detail["values"] = []
        for field, value in sample.values:
            hit = value_found(value, rows, spaces=sample.set == "sroie")
            loose = value_found(value, rows, spaces=False)
            counts["value_recall"].append((int(hit), 1))
            counts["value_recall_nospace"].append((int(loose), 1))
            if any(c.isdigit() for c in value):
                counts["digit_value_recall"].append((int(hit), 1))
            detail["values"].append({"field": field, "value": value, "exact": hit, "nospace": loose})
        details.append(detail)
    total = sum(took for *_, took in pages)
    return (
        {"pages": len(pages), "pages_per_s": len(pages) / total if total else None}
        | {key: _rate(pairs) for key, pairs in counts.items()}
        | {"conf_numeric_ok": _mean(confidences[0]), "conf_numeric_wrong": _mean(confidences[1])}
        | {"details": details}
    )


def engine_rows(engine: str, run: dict[str, Any], samples: Sequence[Sample]) -> list[dict[str, Any]]:
    """One table row per set from a worker's ``run`` (which keeps the scores, not the raw lines)."""
    if "error" in run:
        return [{"engine": engine, "set": f"failed: {run['error']}"}]
    lines = [[OcrLine(t, (b[0], b[1], b[2], b[3]), c) for t, b, c in page] for page in run.pop("lines")]
    words = [
        [Word(t, (b[0], b[1], b[2], b[3]), c, "ocr", n) for t, b, c, n in page] for page in run.pop("words")
    ]
    seconds, run["sets"], rows = run.pop("seconds"), {}, []
    for name in dict.fromkeys(s.set for s in samples):
        chosen = [page for page in zip(samples, lines, words, seconds, strict=True) if page[0].set == name]
        got = run["sets"][name] = score(chosen)
        rows.append(
            {"engine": engine, "set": name, "load_s": run["load_s"], "peak_rss_mib": run["peak_rss_mib"]}
            | got
        )
    return rows


COLUMNS = (
    ("pages", "pages", "{}"), ("cer", "CER", "{:.3f}"), ("wer", "WER", "{:.3f}"),
    ("accent_recall", "accent rec", "{:.3f}"), ("digit_error", "digit err", "{:.3f}"),
    ("value_recall", "value rec exact", "{:.3f}"), ("value_recall_nospace", "value rec no-space", "{:.3f}"),
    ("digit_value_recall", "digit value rec", "{:.3f}"), ("conf_numeric_ok", "conf num ok", "{:.2f}"),
    ("conf_numeric_wrong", "conf num wrong", "{:.2f}"), ("pages_per_s", "pages/s", "{:.2f}"),
    ("load_s", "load s", "{:.2f}"), ("peak_rss_mib", "peak RSS MiB", "{:.0f}"),
)  # fmt: skip


def table(rows: Sequence[dict[str, Any]]) -> str:
    lines = [
        "| engine | set | " + " | ".join(h for _, h, _ in COLUMNS) + " |",
        "|---|---|" + "---:|" * len(COLUMNS),
    ]
    for row in rows:
        cells = [fmt.format(row[key]) if row.get(key) is not None else "-" for key, _, fmt in COLUMNS]
        lines.append(f"| {row['engine']} | {row['set']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--engines", help="comma-separated keys of OCR_ENGINES (default: all)")
    parser.add_argument("--generated", type=int, default=12, help="generated pages, half A4 half receipts")
    parser.add_argument(
        "--corpus", type=Path, help="folder with sroie/ and wildreceipt/ (e.g. ../shared/corpus)"
    )
    parser.add_argument("--limit", type=int, default=None, help="documents per corpus set (default: all)")
    parser.add_argument("--threads", type=int, default=available_cpus(), help="threads per engine")
    parser.add_argument("--json", type=Path, help="write every number here")
    parser.add_argument("--pages-dir", type=Path, help="keep the generated pages here (to look at them)")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker)
        return
    from app.ocr.engines import OCR_ENGINES

    engines = args.engines.split(",") if args.engines else list(OCR_ENGINES)
    with tempfile.TemporaryDirectory(prefix="bench_ocr_engines_") as scratch:
        folder = args.pages_dir or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        samples = [generate(i, folder) for i in range(args.generated)]
        for dataset in ("sroie", "wildreceipt") if args.corpus else ():
            samples += corpus(args.corpus, dataset, args.limit)
        results: dict[str, Any] = {"argv": sys.argv[1:], "threads": args.threads, "engines": {}}
        rows: list[dict[str, Any]] = []
        for engine in engines:
            print(f"running {engine} on {len(samples)} pages ...", file=sys.stderr)
            run = results["engines"][engine] = run_engine(engine, samples, args.threads, Path(scratch))
            rows += engine_rows(engine, run, samples)
    print(f"threads per engine: {args.threads}\n")
    print(table(rows))
    if args.json:
        results["rows"] = [{k: v for k, v in row.items() if k != "details"} for row in rows]
        args.json.write_text(json.dumps(results, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
