"""Generate a seeded, labelled set of invoices and receipts for ``docextract eval``, to measure how the
extraction generalises beyond the corpus it was tuned on.

    .venv/bin/python bench/generate_eval_set.py OUT_DIR --count 60 --seed 1
    .venv/bin/docextract eval OUT_DIR --schema OUT_DIR/schema.json --engine layout --out /tmp/gen.json

Writes ``<id>.pdf`` or ``<id>.png`` (the document), ``<id>.json`` (ground truth: a flat object; a field
not on the page is left out), ``schema.json`` (the JSON Schema the documents are extracted with) and
``_manifest.json`` (per document: kind, language, failure classes, and each truth value as printed).

Languages rotate over en, de, fr, es, it, nl, and invoices alternate with receipts (shifted by one
every six documents, so twelve hold both kinds in every language). Each document gets one label
placement (``labels_left``, ``labels_above``, ``labels_inline``) and up to two more failure classes:
``vat_table`` (a reduced and a standard rate row, each net/tax/gross, and a sum row), ``rounding`` (a
rounding line before the amount to pay), ``payment`` (cash given and change; receipts), ``due_date``
(in the payment terms; invoices), ``glued_datetime`` (date and time without a space),
``unlabelled_seller`` (the seller's name on top; receipts), ``iban`` (valid check digits; invoices)
and ``image`` (about a third: the page as a mildly damaged PNG scan; ``--no-images`` drops it).
Arithmetic is exact (Decimal, cents): subtotal + tax_total == total holds in every truth.

With ``--senders N``, ``--count`` documents from each of N senders (``s<sender>-<n>-<kind>-<lang>``;
the manifest says each one's ``sender``): a sender keeps its language, kind, label placement,
classes, typeface, name, address, VAT id (three in four print one), IBAN, number format and total
label; its documents differ in items (so the totals move), dates, numbers and amounts, and about a
third are scans. ``bench/bench_sender_memory.py`` measures sender memory on them.
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pymupdf
from PIL import Image, ImageFilter
from stdnum.eu import vat as eu_vat
from stdnum.gb import vat as gb_vat

from bench.page_layout import Cell, Row, Typeface, draw_page

LANGS = ("en", "de", "fr", "es", "it", "nl")
CENT = Decimal("0.01")
A4_WIDTH, A4_HEIGHT, RECEIPT_WIDTH = 595.0, 842.0, 226.0  # points; a receipt is 80 mm wide
LAYOUTS = ("labels_left", "labels_above", "labels_inline")
NUMBER_FORMATS = ("RE-{y}-{n:05d}", "F{y}/{n:04d}", "INV-{y}-{n:04d}", "{y}{n:06d}")
VAT_LABELS = {
    "en": "VAT No.",
    "de": "USt-IdNr.",
    "fr": "N° TVA",
    "es": "NIF",
    "it": "P. IVA",
    "nl": "BTW-nr.",
}
INVOICE_CLASSES = ("vat_table", "rounding", "due_date", "glued_datetime", "iban")
RECEIPT_CLASSES = ("vat_table", "rounding", "payment", "glued_datetime", "unlabelled_seller")


@dataclass(frozen=True)
class Language:
    """How one language labels and prints an invoice or a receipt."""

    invoice: str
    receipt: str
    number: str
    date: str  # the invoice date's label
    receipt_date: str
    terms: tuple[str, ...]  # payment terms with the due date ({date})
    seller: str
    buyer: str
    currency: str
    subtotal: str
    tax: str  # "MwSt": the rate follows
    totals: tuple[str, ...]
    to_pay: str  # the amount to pay after rounding
    rounding: str
    cash: str
    change: str
    table: tuple[str, str, str, str, str]  # rate, net, tax, gross, sum row
    description: str
    quantity: str
    amount: str
    thanks: str
    rates: tuple[Decimal, Decimal]  # reduced, standard
    date_formats: tuple[str, ...]
    decimal_comma: bool
    thousands: str
    country: str
    symbol: str  # currency code and symbol, "EUR:€"
    sellers: tuple[str, ...]
    streets: tuple[str, ...]
    buyers: tuple[str, ...]
    items: tuple[str, ...]


LANGUAGES = {
    "en": Language(
        "INVOICE", "RECEIPT", "Invoice No.", "Invoice date", "Date",
        ("Payment due by {date}", "Please pay within 30 days, by {date}"), "Supplier", "Bill to",
        "Currency", "Subtotal", "VAT", ("Total", "Amount due", "Total due"), "Amount payable",
        "Rounding", "Cash", "Change", ("VAT rate", "Net", "VAT", "Gross", "Total"), "Description",
        "Qty", "Amount", "Thank you for your business!", (Decimal(5), Decimal(20)),
        ("%d/%m/%Y", "%Y-%m-%d"), False, ",", "GB", "GBP:£",
        ("Crème & Co. Ltd", "Harbour Tools Ltd", "Greenleaf Stationers"),
        ("221 Baker Street, London NW1 6XE", "14 Quay Road, Bristol BS1 4DJ"),
        ("Naïve Café Ltd", "Northwind Traders plc"),
        ("Consulting services", "Printer paper A4", "Steel bolts M8", "Café latte", "Shipping",
         "Blueberry muffin", "Toner cartridge"),
    ),
    "de": Language(
        "Rechnung", "Kassenbon", "Rechnungsnummer", "Rechnungsdatum", "Datum",
        ("Zahlbar netto bis {date}", "Fällig am {date} ohne Abzug", "zahlbar bis {date}"), "Lieferant",
        "Kunde", "Währung", "Nettobetrag", "MwSt", ("Gesamtbetrag", "Summe", "Zu zahlen"), "Zu zahlen",
        "Rundung", "Bar", "Rückgeld", ("MwSt-Satz", "Netto", "MwSt", "Brutto", "Summe"), "Bezeichnung",
        "Menge", "Betrag", "Vielen Dank für Ihren Einkauf!", (Decimal(7), Decimal(19)),
        ("%d.%m.%Y", "%d.%m.%Y", "%Y-%m-%d"), True, ".", "DE", "EUR:€",
        ("Müller GmbH", "Bäckerei Weiß & Söhne", "Schröder Bürobedarf KG"),
        ("Hauptstraße 12, 80331 München", "Königsallee 5, 40212 Düsseldorf"),
        ("Bäckerei Schäfer KG", "Gärtnerei Kühn OHG"),
        ("Schrauben M8 verzinkt", "Kaffee gemahlen", "Brötchen", "Äpfel Elstar 1 kg", "Süßwaren",
         "Versandkosten", "Wartung Drucker"),
    ),
    "fr": Language(
        "FACTURE", "Ticket de caisse", "Facture n°", "Date de facture", "Date",
        ("Échéance : {date}", "Paiement au plus tard le {date}"), "Fournisseur", "Client", "Devise",
        "Total HT", "TVA", ("Total TTC", "Montant TTC"), "Net à payer", "Arrondi", "Espèces", "Rendu",
        ("Taux TVA", "HT", "TVA", "TTC", "Total"), "Désignation", "Qté", "Montant",
        "Merci de votre visite", (Decimal("5.5"), Decimal(20)), ("%d/%m/%Y",), True, " ", "FR", "EUR:€",
        ("Société Générale de Négoce", "Boulangerie Lefèvre", "Café Régence SARL"),
        ("12 rue de la Paix, 75002 Paris", "8 place Bellecour, 69002 Lyon"),
        ("Café de la Gare SARL", "Hôtel du Lac SA"),
        ("Crème brûlée", "Pâtes fraîches", "Thé vert bio", "Prestation de conseil", "Frais de port",
         "Gâteau au chocolat", "Baguette tradition"),
    ),
    "es": Language(
        "FACTURA", "Ticket de compra", "Factura nº", "Fecha de emisión", "Fecha",
        ("Vencimiento: {date}", "Pago hasta el {date}"), "Proveedor", "Cliente", "Moneda",
        "Base imponible", "IVA", ("Total", "Total factura"), "Total a pagar", "Redondeo", "Efectivo",
        "Cambio", ("Tipo IVA", "Base", "Cuota", "Total", "Total"), "Descripción", "Cant.", "Importe",
        "¡Gracias por su compra!", (Decimal(10), Decimal(21)), ("%d/%m/%Y",), True, ".", "ES", "EUR:€",
        ("Panadería Muñoz S.L.", "Ferretería Núñez S.A.", "Cafetería La Niña"),
        ("Calle Mayor 5, 28013 Madrid", "Avda. Diagonal 210, 08018 Barcelona"),
        ("Distribuciones Ibáñez S.A.", "Papelería Peña S.L."),
        ("Café con leche", "Jamón ibérico 100 g", "Piña natural", "Envío urgente", "Servicio técnico",
         "Pimentón dulce", "Tostada"),
    ),
    "it": Language(
        "FATTURA", "Scontrino", "Fattura n.", "Data fattura", "Data",
        ("Scadenza: {date}", "Pagamento entro il {date}"), "Fornitore", "Cliente", "Valuta", "Imponibile",
        "IVA", ("Totale", "Totale documento"), "Netto a pagare", "Arrotondamento", "Contanti", "Resto",
        ("Aliquota", "Imponibile", "Imposta", "Totale", "Totale"), "Descrizione", "Q.tà", "Importo",
        "Grazie e arrivederci", (Decimal(10), Decimal(22)), ("%d/%m/%Y",), True, ".", "IT", "EUR:€",
        ("Pasticceria Bianchi S.r.l.", "Ferramenta Rossi S.n.c.", "Caffè Città S.r.l."),
        ("Via Roma 10, 00184 Roma", "Corso Buenos Aires 3, 20124 Milano"),
        ("Caffè Città di Torino", "Libreria Galilei S.p.A."),
        ("Caffè espresso", "Cornetto alla crema", "Tè freddo", "Consulenza tecnica", "Spedizione",
         "Pane casereccio", "Toner stampante"),
    ),
    "nl": Language(
        "FACTUUR", "Kassabon", "Factuurnummer", "Factuurdatum", "Datum",
        ("Vervaldatum: {date}", "Te betalen vóór {date}"), "Leverancier", "Klant", "Valuta", "Subtotaal",
        "BTW", ("Totaal", "Totaalbedrag"), "Te betalen", "Afronding", "Contant", "Wisselgeld",
        ("BTW-tarief", "Excl.", "BTW", "Incl.", "Totaal"), "Omschrijving", "Aantal", "Bedrag",
        "Bedankt voor uw bezoek", (Decimal(9), Decimal(21)), ("%d-%m-%Y", "%d.%m.%Y"), True, ".", "NL",
        "EUR:€",
        ("Coöperatie De Eendracht U.A.", "Bakkerij Van Dijk B.V.", "IJzerhandel Smit"),
        ("Keizersgracht 123, 1015 CJ Amsterdam", "Oudegracht 77, 3511 AE Utrecht"),
        ("Café 't Hoekje", "Drukkerij Jansen B.V."),
        ("Koffie verkeerd", "Appeltaart", "Crème fraîche", "Verzendkosten", "Advieswerk",
         "Tosti ham kaas", "Stroopwafels"),
    ),
}  # fmt: skip
IBAN_BBAN = {
    "GB": "A4N14",
    "DE": "N18",
    "FR": "N23",
    "ES": "N20",
    "IT": "A1N22",
    "NL": "A4N10",
}  # BBAN: letters, digits


# --- values and how they are printed ---------------------------------------------------------------


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def money(value: Decimal, lang: Language) -> str:
    """1,234.56 (en), 1.234,56 (de, es, it, nl), 1 234,56 (fr)."""
    text = f"{cents(value):,.2f}"
    if not lang.decimal_comma:
        return text
    return text.replace(",", "\0").replace(".", ",").replace("\0", lang.thousands)


def rate_text(rate: Decimal, lang: Language) -> str:
    text = f"{rate.normalize():f}"
    return (
        f"{text.replace('.', ',') if lang.decimal_comma else text}{'%' if lang is LANGUAGES['en'] else ' %'}"
    )


def iban(country: str, rng: random.Random) -> str:
    """A random IBAN of ``country`` with valid check digits (ISO 13616, mod 97)."""
    spec = IBAN_BBAN[country]
    letters, digits = (int(spec[1]), int(spec[3:])) if spec.startswith("A") else (0, int(spec[1:]))
    bban = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(letters))
    bban += "".join(rng.choice("0123456789") for _ in range(digits))
    numeric = "".join(str(int(c, 36)) for c in f"{bban}{country}00")
    return f"{country}{98 - int(numeric) % 97:02d}{bban}"


def iban_valid(value: str) -> bool:
    compact = value.replace(" ", "")
    return int("".join(str(int(c, 36)) for c in compact[4:] + compact[:4])) % 97 == 1


# --- layout --------------------------------------------------------------------------------------


@dataclass
class Sheet:
    """Rows being laid out on a page, with the label placement of this document."""

    face: Typeface
    size: float
    left: float
    right: float
    layout: str
    rows: list[Row] = field(default_factory=list)

    def line(self, text: str, x: float | None = None, align: str = "left", **kw: Any) -> None:
        self.rows.append(Row((Cell(text, self.left if x is None else x, align),), self.size, **kw))

    def centred(self, text: str, **kw: Any) -> None:
        self.line(text, (self.left + self.right) / 2, "center", **kw)

    def pair(self, label: str, value: str, *, amount: bool, bold: bool = False, space: float = 1.0) -> None:
        """A label and its value, placed by the layout: left of it, above it, or inline ("Total: 12,50").
        Amounts stand at the right edge; other values in a column after the labels."""
        x, align = (self.right, "right") if amount else (self.left, "left")
        narrow = self.right - self.left < 300  # a till receipt: values at the right edge, as amounts
        label_x = self.right - 200 if amount and not narrow else self.left
        value_x, value_align = (self.right, "right") if amount or narrow else (self.left + 125, "left")
        fits = (
            self.face.width(f"{label}    {value}", self.size, bold) < value_x - label_x
            if value_align == "left"
            else (self.face.width(f"{label}    {value}", self.size, bold) < self.right - label_x)
        )
        if (
            self.layout == "labels_inline"
            and self.face.width(f"{label}: {value}", self.size, bold) < self.right - self.left
        ):
            self.line(f"{label}: {value}", x, align, bold=bold, space=space)
        elif self.layout == "labels_left" and fits:
            cells = (Cell(label, label_x), Cell(value, value_x, value_align))
            self.rows.append(Row(cells, self.size, bold, space))
        else:  # labels_above, or what does not fit on one line
            self.line(label, x, align, bold=bold, space=space)
            self.line(value, x, align, bold=bold, space=0.95)

    def columns(self, texts: Sequence[str], edges: Sequence[float], **kw: Any) -> None:
        """A table row: the first text left, the others right-aligned at ``edges``."""
        cells = (
            Cell(texts[0], self.left),
            *(Cell(t, x, "right") for t, x in zip(texts[1:], edges, strict=True)),
        )
        self.rows.append(Row(cells, self.size, **kw))

    def edges(self, headers: Sequence[str], widest: str) -> list[float]:
        """Right edges of right-aligned columns, the last at the right margin."""
        gap, found = 1.5 * self.size, [self.right]
        for header in reversed(headers[2:]):  # each column's width sets the edge of the one left of it
            width = max(self.face.width(header, self.size, True), self.face.width(widest, self.size))
            found.insert(0, found[0] - width - gap)
        return found


def render(rows: Sequence[Row], width: float, height: float | None, face: Typeface) -> pymupdf.Document:
    """One page with every row's cells written as text (TextWriter: €, ß and accents render)."""
    return draw_page(rows, width, height, face, margin=36.0)[0]


def scan(doc: pymupdf.Document, rng: random.Random) -> Image.Image:
    """The page as a mildly damaged scan: 150-200 DPI, <= 1.5 degrees, blur, noise, a JPEG round trip."""
    pix = doc[0].get_pixmap(dpi=rng.randint(150, 200))
    image = Image.frombytes("RGB", (pix.width, pix.height), pix.samples)
    image = image.rotate(rng.uniform(-1.5, 1.5), Image.Resampling.BICUBIC, expand=True, fillcolor="white")
    image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.2, 0.6)))
    noise = np.random.default_rng(rng.randrange(2**32)).normal(
        0, rng.uniform(3, 8), (image.height, image.width, 1)
    )
    pixels = (np.asarray(image, dtype=np.float32) + noise).clip(0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=rng.randint(60, 85))
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


# --- documents -----------------------------------------------------------------------------------


@dataclass
class Document:
    id: str
    kind: str
    lang: str
    classes: list[str]
    truth: dict[str, Any]
    printed: dict[str, str]  # each truth value as printed on the page
    doc: pymupdf.Document
    sender: int | None = None


def choose_classes(receipt: bool, rng: random.Random) -> tuple[str, list[str]]:
    """The label placement and 1-3 failure classes: the placement, then 0-2 more ('image' among them)."""
    layout = rng.choice(LAYOUTS)
    image = rng.random() < 1 / 3
    extra = rng.choice([0, 1, 1, 2, 2])  # a few with the label placement alone, as a baseline
    pool = RECEIPT_CLASSES if receipt else INVOICE_CLASSES
    others = rng.sample(pool, max(0, extra - image))
    return layout, [layout, *others, *(["image"] if image else [])]


def amounts(
    receipt: bool, rates: Sequence[Decimal], lang: Language, rng: random.Random
) -> tuple[list[tuple[str, int, Decimal, Decimal]], list[tuple[Decimal, Decimal, Decimal, Decimal]]]:
    """Items (name, quantity, unit price, rate) and per-rate rows (rate, net, tax, gross), exact to the
    cent. Receipt prices include VAT (the tax is taken out of the gross); invoice prices exclude it."""
    names = rng.sample(lang.items, rng.randint(2, 5))
    items = []
    for i, name in enumerate(names):
        low, high = (50, 2500) if receipt else (500, 90000)
        rate = rates[i % len(rates)] if i < len(rates) else rng.choice(rates)
        items.append(
            (name, rng.randint(1, 3 if receipt else 10), Decimal(rng.randint(low, high)) / 100, rate)
        )
    summary = []
    for rate in rates:
        base = sum((q * p for _, q, p, r in items if r == rate), Decimal(0))
        if receipt:
            tax = cents(base * rate / (100 + rate))
            summary.append((rate, base - tax, tax, base))
        else:
            tax = cents(base * rate / 100)
            summary.append((rate, base, tax, base + tax))
    return items, summary


@dataclass
class Facts:
    """What one document says, before layout, and the truth it records as it is printed."""

    lang: Language
    classes: list[str]
    rng: random.Random
    items: list[tuple[str, int, Decimal, Decimal]]
    summary: list[tuple[Decimal, Decimal, Decimal, Decimal]]
    day: datetime.date
    date_format: str
    currency_style: str  # "code_line" (a Währung: EUR line), "symbol" or "code_suffix" (beside the total)
    truth: dict[str, Any] = field(default_factory=dict)
    printed: dict[str, str] = field(default_factory=dict)
    sender: Sender | None = None

    def pick(self, what: str, options: Sequence[str]) -> str:
        """The sender's choice of ``what`` (seller, street, buyer, number, total, terms), or a random
        one (the same draws as before senders existed, so seeded sets stay the same)."""
        return self.sender.choices[what] if self.sender is not None else self.rng.choice(options)

    @property
    def subtotal(self) -> Decimal:
        return sum((s[1] for s in self.summary), Decimal(0))

    @property
    def tax_total(self) -> Decimal:
        return sum((s[2] for s in self.summary), Decimal(0))

    @property
    def total(self) -> Decimal:
        return self.subtotal + self.tax_total

    @property
    def payable(self) -> Decimal:
        """The total rounded to 5 cents (and never equal to it when a rounding line is printed)."""
        step = Decimal("0.05")
        payable = (self.total / step).quantize(Decimal(1), rounding=ROUND_HALF_UP) * step
        return payable + step if payable == self.total and "rounding" in self.classes else payable

    def keep(self, name: str, value: Any, text: str) -> str:
        """Record a truth value and its printed form; return the printed form."""
        self.truth[name], self.printed[name] = value, text
        return text

    def money(self, name: str, value: Decimal) -> str:
        return self.keep(name, float(value), money(value, self.lang))


def facts(lang: Language, receipt: bool, classes: list[str], rng: random.Random) -> Facts:
    rates = lang.rates if "vat_table" in classes else lang.rates[1:]
    items, summary = amounts(receipt, rates, lang, rng)
    day = datetime.date(rng.randint(2015, 2024), rng.randint(1, 12), rng.randint(1, 28))
    style = rng.choice(["code_line", "symbol", "code_suffix"])
    return Facts(lang, classes, rng, items, summary, day, rng.choice(lang.date_formats), style)


def compose(index: int, seed: int) -> Document:
    """Document ``index`` of the set ``seed``: the same arguments give the same document."""
    rng = random.Random(f"{seed}:{index}")
    code = LANGS[index % len(LANGS)]
    receipt = (index + index // len(LANGS)) % 2 == 1  # every six: 3 of each; twelve: both per language
    layout, classes = choose_classes(receipt, rng)
    face = Typeface(rng.choice(["cour", "helv"] if receipt else ["helv", "tiro", "cour"]))
    size = float(rng.choice([8, 8.5, 9]) if receipt else rng.choice([9, 10, 11]))
    width = RECEIPT_WIDTH if receipt else A4_WIDTH
    margin = 10.0 if receipt else rng.uniform(40, 60)
    sheet = Sheet(face, size, margin, width - margin, layout)
    f = facts(LANGUAGES[code], receipt, classes, rng)
    (receipt_rows if receipt else invoice_rows)(sheet, f)
    footer_rows(sheet, f, receipt)
    doc = render(sheet.rows, width, None if receipt else A4_HEIGHT, face)
    kind = "receipt" if receipt else "invoice"
    return Document(f"{index:03d}-{kind}-{code}", kind, code, classes, f.truth, f.printed, doc)


@dataclass(frozen=True)
class Sender:
    """One issuer (``--senders``): what stays the same on all its documents (language, kind, label
    placement, failure classes, typeface, margins, its name, address, VAT id and IBAN, the labels
    and number format it prints); its documents differ in items (so the totals move), dates,
    numbers, amounts, and which of them are scans."""

    index: int
    lang: str
    receipt: bool
    layout: str
    classes: tuple[str, ...]
    face: str
    size: float
    margin: float
    currency_style: str
    date_format: str
    choices: dict[str, str]
    """seller, street, buyer, number (its format), total (its label), terms."""
    vat_id: str | None
    iban: str | None


def sender_of(index: int, seed: int) -> Sender:
    """Sender ``index`` of the set ``seed``: languages rotate, invoices and receipts alternate; the
    name is the language's ``index // 6``-th seller (with a branch number past the third)."""
    rng = random.Random(f"{seed}:sender:{index}")
    code = LANGS[index % len(LANGS)]
    lang = LANGUAGES[code]
    receipt = (index + index // len(LANGS)) % 2 == 1
    layout, classes = choose_classes(receipt, rng)
    rank = index // len(LANGS)
    seller = lang.sellers[rank % len(lang.sellers)]
    if rank >= len(lang.sellers):
        seller = f"{seller} {rank // len(lang.sellers) + 1}"
    totals = [t for t in lang.totals if "rounding" not in classes or t != lang.to_pay]
    choices = {
        "seller": seller,
        "street": rng.choice(lang.streets),
        "buyer": rng.choice(lang.buyers),
        "number": rng.choice(NUMBER_FORMATS),
        "total": rng.choice(totals),
        "terms": rng.choice(lang.terms),
    }
    return Sender(
        index=index,
        lang=code,
        receipt=receipt,
        layout=layout,
        classes=tuple(c for c in classes if c != "image"),
        face=rng.choice(["cour", "helv"] if receipt else ["helv", "tiro", "cour"]),
        size=float(rng.choice([8, 8.5, 9]) if receipt else rng.choice([9, 10, 11])),
        margin=10.0 if receipt else rng.uniform(40, 60),
        currency_style=rng.choice(["code_line", "symbol", "code_suffix"]),
        date_format=rng.choice(lang.date_formats),
        choices=choices,
        vat_id=vat_id(lang.country, rng) if rng.random() < 0.75 else None,
        iban=iban(lang.country, rng),
    )


def compose_for_sender(sender: Sender, number: int, seed: int) -> Document:
    """Document ``number`` of ``sender``: its fixed layout, new values; about a third are scans."""
    rng = random.Random(f"{seed}:sender:{sender.index}:{number}")
    lang = LANGUAGES[sender.lang]
    classes = [sender.layout, *(c for c in sender.classes if c != sender.layout)]
    if rng.random() < 1 / 3:
        classes.append("image")
    face = Typeface(sender.face)
    width = RECEIPT_WIDTH if sender.receipt else A4_WIDTH
    sheet = Sheet(face, sender.size, sender.margin, width - sender.margin, sender.layout)
    f = facts(lang, sender.receipt, classes, rng)
    f.currency_style, f.date_format, f.sender = sender.currency_style, sender.date_format, sender
    (receipt_rows if sender.receipt else invoice_rows)(sheet, f)
    footer_rows(sheet, f, sender.receipt)
    doc = render(sheet.rows, width, None if sender.receipt else A4_HEIGHT, face)
    kind = "receipt" if sender.receipt else "invoice"
    name = f"s{sender.index:02d}-{number:02d}-{kind}-{sender.lang}"
    return Document(name, kind, sender.lang, classes, f.truth, f.printed, doc, sender.index)


def vat_line(sheet: Sheet, f: Facts, centred: bool = False) -> None:
    """The sender's VAT id, under its address (documents of ``--senders`` only)."""
    if f.sender is None or f.sender.vat_id is None:
        return
    text = f"{VAT_LABELS[f.sender.lang]} {f.sender.vat_id}"
    (sheet.centred if centred else sheet.line)(text)


def vat_id(country: str, rng: random.Random) -> str:
    """A random VAT id of ``country`` whose check digits hold (drawn until python-stdnum accepts one)."""
    shapes = {"GB": "#########", "DE": "#########", "FR": "###########", "ES": "B########"}
    shapes |= {"IT": "###########", "NL": "#########B##"}
    check = gb_vat.is_valid if country == "GB" else eu_vat.is_valid
    while True:
        body = "".join(rng.choice("0123456789") if c == "#" else c for c in shapes[country])
        if check(f"{country}{body}"):
            return f"{country}{body}"


def issue_date(f: Facts, receipt: bool) -> str:
    """The issue date as printed, with the time on receipts, glued to it ("28.03.201809:51") when chosen."""
    issued = f.keep("issue_date", f.day.isoformat(), f.day.strftime(f.date_format))
    time = f"{f.rng.randint(7, 21):02d}:{f.rng.randint(0, 59):02d}"
    if "glued_datetime" in f.classes:
        return f"{issued}{time}"
    return f"{issued} {time}" if receipt else issued


def total_line(sheet: Sheet, f: Facts, **kw: Any) -> None:
    """The total, its currency beside it unless a currency line says it."""
    lang = f.lang
    currency, symbol = lang.symbol.split(":")
    f.keep("currency", currency, symbol if f.currency_style == "symbol" else currency)
    text = f.money("total", f.total)
    if f.currency_style == "symbol":
        text = f"{text} {symbol}" if lang.decimal_comma else f"{symbol}{text}"
    elif f.currency_style == "code_suffix":
        text = f"{text} {currency}"
    label = f.pick("total", [t for t in lang.totals if "rounding" not in f.classes or t != lang.to_pay])
    sheet.pair(label, text, amount=True, bold=True, **kw)


def currency_line(sheet: Sheet, f: Facts) -> None:
    if f.currency_style == "code_line":
        sheet.pair(f.lang.currency, f.lang.symbol.split(":")[0], amount=False)


def receipt_rows(sheet: Sheet, f: Facts) -> None:
    """A till receipt: the seller on top (unlabelled) or a title, date, items, total, then the VAT."""
    lang, seller = f.lang, f.pick("seller", f.lang.sellers)
    f.keep("seller_name", seller, seller)
    if "unlabelled_seller" in f.classes:
        sheet.centred(seller, bold=True)
        for part in f.pick("street", lang.streets).split(", "):
            sheet.centred(part)
        vat_line(sheet, f, centred=True)
    else:
        sheet.centred(lang.receipt, bold=True)
    sheet.pair(lang.receipt_date, issue_date(f, receipt=True), amount=False, space=1.6)
    if "unlabelled_seller" not in f.classes:
        sheet.pair(lang.seller, seller, amount=False)
        vat_line(sheet, f)
    currency_line(sheet, f)
    sheet.rows.append(Row((), sheet.size, space=0.6))
    for name, qty, price, _ in f.items:
        sheet.columns([name, money(qty * price, lang)], [sheet.right])
        if qty > 1:
            sheet.line(f"  {qty} x {money(price, lang)}")
    total_line(sheet, f, space=1.4)
    vat_block(sheet, f)


def invoice_rows(sheet: Sheet, f: Facts) -> None:
    """An A4 invoice: the labelled seller and buyer, number, date, an item table, VAT, total."""
    lang, seller = f.lang, f.pick("seller", f.lang.sellers)
    sheet.line(lang.invoice, sheet.right, "right", bold=True)
    sheet.pair(lang.seller, f.keep("seller_name", seller, seller), amount=False, space=1.4)
    for part in f.pick("street", lang.streets).split(", "):
        sheet.line(part)
    vat_line(sheet, f)
    sheet.pair(lang.buyer, f.pick("buyer", lang.buyers), amount=False, space=1.6)
    number = f.pick("number", NUMBER_FORMATS)
    number = number.format(y=f.day.year, n=f.rng.randint(1, 9999))
    sheet.pair(lang.number, f.keep("invoice_number", number, number), amount=False, space=1.6)
    sheet.pair(lang.date, issue_date(f, receipt=False), amount=False)
    currency_line(sheet, f)
    headers = [lang.description, lang.quantity, lang.amount]
    edges = sheet.edges(headers, money(Decimal("99999.99"), lang))
    sheet.columns(headers, edges, bold=True, space=2.0)
    for name, qty, price, _ in f.items:
        sheet.columns([name, str(qty), money(qty * price, lang)], edges)
    vat_block(sheet, f)
    total_line(sheet, f)


def footer_rows(sheet: Sheet, f: Facts, receipt: bool) -> None:
    """Rounding and amount to pay, cash and change, payment terms with the due date, IBAN, thanks."""
    lang = f.lang
    if "rounding" in f.classes:
        sheet.pair(lang.rounding, money(f.payable - f.total, lang), amount=True)
        sheet.pair(lang.to_pay, money(f.payable, lang), amount=True, bold=True)
    if "payment" in f.classes:
        paid = f.payable if "rounding" in f.classes else f.total
        cash = next(Decimal(n) for n in (5, 10, 20, 50, 100, 200, 500, 1000, 5000) if n > paid)
        sheet.pair(lang.cash, money(cash, lang), amount=True, space=1.4)
        sheet.pair(lang.change, money(cash - paid, lang), amount=True)
    if "due_date" in f.classes:
        due = f.day + datetime.timedelta(days=f.rng.choice([10, 14, 30]))
        shown = f.keep("due_date", due.isoformat(), due.strftime(f.date_format))
        sheet.line(f.pick("terms", lang.terms).format(date=shown), space=2.0)
    if "iban" in f.classes:
        number = f.sender.iban if f.sender is not None else iban(lang.country, f.rng)
        grouped = " ".join(number[i : i + 4] for i in range(0, len(number), 4))
        sheet.line(f"IBAN {f.keep('iban', number, grouped)}", space=1.5)
    (sheet.centred if receipt else sheet.line)(lang.thanks, space=2.0)


def vat_block(sheet: Sheet, f: Facts) -> None:
    """Subtotal and tax: two labelled lines, or a table with a row per rate and a sum row."""
    lang = f.lang
    if "vat_table" not in f.classes:
        sheet.pair(lang.subtotal, f.money("subtotal", f.subtotal), amount=True, space=1.4)
        tax_label = f"{lang.tax} {rate_text(f.summary[0][0], lang)}"
        sheet.pair(tax_label, f.money("tax_total", f.tax_total), amount=True)
        return
    headers = list(lang.table[:4])
    edges = sheet.edges(headers, money(Decimal("99999.99" if sheet.right > 300 else "999.99"), lang))
    sheet.columns(headers, edges, bold=True, space=1.6)
    for rate, net, tax, gross in f.summary:
        sheet.columns([rate_text(rate, lang), *(money(v, lang) for v in (net, tax, gross))], edges)
    sums = [f.money("subtotal", f.subtotal), f.money("tax_total", f.tax_total), money(f.total, lang)]
    sheet.columns([lang.table[4], *sums], edges, bold=True)


def schema() -> dict[str, Any]:
    """The JSON Schema the documents are extracted with (and the truth validates against)."""

    def prop(kind: str, **extra: Any) -> dict[str, Any]:
        return {"type": [kind, "null"], **extra}

    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Generated invoice or receipt",
        "type": "object",
        "properties": {
            "invoice_number": prop("string", **{"x-compare": "id"}),
            "issue_date": prop("string", format="date"),
            "due_date": prop("string", format="date"),
            "seller_name": prop("string"),
            "currency": prop("string"),
            "subtotal": prop("number"),
            "tax_total": prop("number"),
            "total": prop("number"),
            "iban": prop("string", **{"x-compare": "id"}),
        },
        "x-checks": [{"name": "sum_ok", "expr": "subtotal + tax_total == total", "tolerance": 0.01}],
    }


def documents(count: int, seed: int, senders: int) -> Iterator[tuple[Document, str]]:
    """The set's documents, each with the seed of its scan: ``count`` in all, or, with ``senders``,
    ``count`` from each sender."""
    if not senders:
        for index in range(count):
            yield compose(index, seed), f"{seed}:{index}:scan"
        return
    for index in range(senders):
        sender = sender_of(index, seed)
        for number in range(count):
            yield compose_for_sender(sender, number, seed), f"{seed}:sender:{index}:{number}:scan"


def generate(out: Path, count: int, seed: int, images: bool = True, senders: int = 0) -> list[dict[str, Any]]:
    """Write ``count`` documents (``count`` per sender with ``senders``), their truth, the schema
    and the manifest into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "schema.json").write_text(json.dumps(schema(), indent=2, ensure_ascii=False) + "\n")
    entries = []
    for document, scan_seed in documents(count, seed, senders):
        classes = document.classes if images else [c for c in document.classes if c != "image"]
        try:
            if "image" in classes:
                file = f"{document.id}.png"
                scan(document.doc, random.Random(scan_seed)).save(out / file)
            else:
                file = f"{document.id}.pdf"
                document.doc.set_metadata({"producer": "bench/generate_eval_set.py"})  # no dates: same bytes
                document.doc.save(out / file, garbage=3, deflate=True, no_new_id=True)
        finally:
            document.doc.close()
        truth = json.dumps(document.truth, indent=2, ensure_ascii=False)
        (out / f"{document.id}.json").write_text(truth + "\n")
        entries.append(
            {
                "id": document.id,
                "file": file,
                "kind": document.kind,
                "lang": document.lang,
                "classes": classes,
                "printed": document.printed,
                **({"sender": document.sender} if document.sender is not None else {}),
            }
        )
    manifest = {"seed": seed, "count": count, "documents": entries}
    if senders:
        manifest["senders"] = senders
    (out / "_manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return entries


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out", type=Path, help="output folder (created)")
    parser.add_argument("--count", type=int, default=60)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-images", action="store_true", help="PDFs only (no scanned PNGs)")
    parser.add_argument(
        "--senders", type=int, default=0, help="this many senders, --count documents from each"
    )
    args = parser.parse_args()
    entries = generate(args.out, args.count, args.seed, images=not args.no_images, senders=args.senders)
    pngs = sum(e["file"].endswith(".png") for e in entries)
    print(f"wrote {len(entries)} documents ({pngs} PNG) to {args.out}")


if __name__ == "__main__":
    main()
