"""What invoices and receipts print as labels, by concept, in English, German, French, Spanish,
Italian, Dutch and Malay.

Shared by the layout engine (which finds values next to these labels) and the trust layer (which
never lets a label pass for a value: :func:`is_label`).

A schema property is matched to at most one concept (by its name, description and the embedding
model; see ``fields.py``) and then recognises that concept's labels on the page, besides its own
name and ``x-aliases``. This is how a schema without aliases (``amount``: "Total amount of the
invoice including taxes") still finds "Gesamtbetrag" or "Jumlah".
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from typing import Literal

Role = Literal["value", "party", "address", "items"]
Scope = Literal["document", "item"]


@dataclass(frozen=True)
class Concept:
    key: str
    description: str
    """English text the embedding model compares with a property's name and description."""
    keywords: frozenset[str]
    """Words in a property's name that point at this concept."""
    labels: tuple[str, ...]
    role: Role = "value"
    scope: Scope = "document"
    party: str | None = None
    """For parties and their details: ``seller`` or ``buyer``."""


def _c(
    key: str,
    description: str,
    keywords: str,
    labels: str,
    role: Role = "value",
    scope: Scope = "document",
    party: str | None = None,
) -> Concept:
    return Concept(
        key,
        description,
        frozenset(keywords.split()),
        tuple(label.strip() for label in labels.split("|") if label.strip()),
        role,
        scope,
        party,
    )


CONCEPTS: tuple[Concept, ...] = (
    _c(
        "invoice_number",
        "invoice number: the identifier of the invoice or receipt document",
        "invoice number no num receipt bill document",
        "invoice number|invoice no|invoice #|invoice id|invoice|inv no|bill no|receipt no|receipt #|"
        "document no|doc no|rechnungsnummer|rechnung nr|rechnungs nr|rechnung|belegnummer|"
        "n de facture|no de facture|numero de facture|facture n|facture|numero de factura|"
        "factura n|factura no|no factura|factura|numero fattura|fattura n|fattura|factuurnummer|"
        "factuur nr|factuur|no invois|nombor invois|invois no|no resit|no bil|cash bill no",
    ),
    _c(
        "order_number",
        "purchase order number referenced on the document",
        "purchase order po",
        "purchase order|purchase order no|po number|po no|po #|order number|order no|your order|"
        "bestellnummer|bestellung|ihre bestellung|bon de commande|numero de commande|commande|"
        "numero de pedido|pedido|orden de compra|numero ordine|ordine|bestelnummer|bestelling|"
        "no pesanan|pesanan belian",
    ),
    _c(
        "issue_date",
        "date the document was issued: invoice date or receipt date",
        "date issue issued invoice",
        "invoice date|date of issue|issue date|issued|date|dated|bill date|receipt date|"
        "rechnungsdatum|datum|ausstellungsdatum|date de facture|date de facturation|"
        "date d emission|factuur datum|"
        "fecha|fecha de factura|fecha de emision|data|data fattura|data emissione|factuurdatum|"
        "tarikh|tarikh invois",
    ),
    _c(
        "due_date",
        "payment due date: the date by which the invoice must be paid",
        "due payment pay",
        "due date|payment due|date due|pay by|payable by|due|falligkeitsdatum|fallig am|"
        "fallig|date limite de paiement|"
        "zahlbar bis|zahlungsziel|date d echeance|echeance|a payer avant|fecha de vencimiento|"
        "vencimiento|data di scadenza|scadenza|vervaldatum|vervaldag|te betalen voor|tarikh akhir|"
        "tarikh matang|tarikh tamat",
    ),
    _c(
        "delivery_date",
        "delivery date or service date of the goods or services",
        "delivery service shipping ship",
        "delivery date|date of delivery|service date|ship date|lieferdatum|leistungsdatum|"
        "date de livraison|fecha de entrega|data di consegna|data consegna|leverdatum|"
        "leveringsdatum|tarikh penghantaran",
    ),
    _c(
        "total",
        "total amount including tax: grand total, amount due, amount paid",
        "total gross grand due payable paid incl including sum amount",
        "total|grand total|total amount|amount due|total due|balance due|total payable|amount payable|"
        "invoice total|total incl|total including tax|total inc gst|total incl gst|total amount payable|"
        "total sales|nett total|net total|rounded total|total rm|total (rm)|"
        "gesamtbetrag|gesamtsumme|gesamt|endbetrag|rechnungsbetrag|zu zahlen|zahlbetrag|summe|"
        "bruttobetrag|total ttc|montant total|montant ttc|net a payer|total a payer|"
        "total a pagar|importe total|total factura|totale|totale fattura|importo totale|"
        "totale da pagare|totaal|totaalbedrag|te betalen|totaal incl|jumlah|jumlah besar|"
        "jumlah keseluruhan|jumlah perlu dibayar|jumlah bersih",
    ),
    _c(
        "subtotal",
        "subtotal: total amount before tax, net amount excluding tax",
        "subtotal sub net untaxed excl excluding before pretax exclusive basis total amount",
        "subtotal|sub total|sub-total|net amount|total net|net total excl|total excl|total excl tax|"
        "total before tax|amount before tax|untaxed amount|total excluding gst|total excl gst|"
        "zwischensumme|nettobetrag|netto|gesamt netto|summe netto|bemessungsgrundlage|"
        "exkl mwst|total ht|montant ht|ht|net|"
        "sous total|hors taxe|base ht|grondslag|exclusief btw|excl btw|"
        "base imponible|subtotal|importe neto|imponibile|subtotale|totale imponibile|subtotaal|"
        "totaal excl|netto bedrag|jumlah kecil|jumlah sebelum cukai",
    ),
    _c(
        "tax_total",
        "total tax amount: VAT, GST or sales tax",
        "tax vat gst sst taxes total amount",
        "tax|vat|gst|sst|sales tax|tax amount|total tax|vat amount|gst amount|total gst|mwst|ust|"
        "mehrwertsteuer|umsatzsteuer|steuer|tva|montant tva|total tva|iva|cuota iva|impuestos|"
        "imposta|iva totale|btw|btw bedrag|cukai|jumlah cukai|cukai jualan",
    ),
    _c(
        "currency",
        "currency of the amounts, ISO 4217 code",
        "currency",
        "currency|wahrung|devise|monnaie|moneda|divisa|valuta|munt|mata wang",
    ),
    _c(
        "vat_id",
        "VAT identification number or tax registration number of a company",
        "vat gst registration reg id",
        "vat id|vat no|vat number|vat reg no|vat registration number|tax id|tax registration|gst id|"
        "gst no|gst reg no|gst registration no|sst id|sst no|ust idnr|ust id|umsatzsteuer id|"
        "ust identifikationsnummer|n tva|numero de tva|tva intracommunautaire|nif|cif|nif cif|"
        "partita iva|p iva|btw nummer|btw nr|btw id|no pendaftaran gst|no cukai|vat|gst|tva|iva|btw|mwst|ust|"
        "tva intra communautaire|n de tva",
    ),
    _c(
        "tax_id",
        "national tax number of a company, not the VAT number",
        "tax number id ein steuernummer",
        "tax number|tax no|ein|steuernummer|st nr|siret|siren|codice fiscale|kvk|no cukai pendapatan",
    ),
    _c(
        "iban",
        "IBAN: international bank account number for payment",
        "iban account bank",
        "iban|bank account|account number|account no|kontonummer|compte|cuenta|conto|rekening|"
        "rekeningnummer|no akaun",
    ),
    _c(
        "bic",
        "BIC or SWIFT code of the bank",
        "bic swift",
        "bic|swift|bic swift|swift code|swift bic|bic code",
    ),
    _c(
        "payment_terms",
        "payment terms: conditions and days allowed for payment",
        "terms payment conditions",
        "payment terms|terms|terms of payment|zahlungsbedingungen|zahlungsziel|conditions de paiement|"
        "condiciones de pago|forma de pago|termini di pagamento|condizioni di pagamento|"
        "betalingsvoorwaarden|betalingstermijn|terma pembayaran",
    ),
    _c(
        "email",
        "email address",
        "email mail",
        "email|e-mail|e mail|mail|courriel|correo|posta elettronica",
    ),
    _c(
        "phone",
        "telephone number",
        "phone telephone tel mobile",
        "phone|tel|telephone|tel no|mobile|telefon|telephone|telefono|telefoon|no tel",
    ),
    _c(
        "seller_name",
        "name of the company that issued the document: seller, supplier, vendor, merchant, issuer",
        "name seller supplier vendor merchant issuer company store shop business from",
        "seller|supplier|vendor|from|sold by|merchant|verkaufer|lieferant|fournisseur|vendeur|"
        "proveedor|vendedor|fornitore|venditore|leverancier|verkoper|penjual|pembekal",
        role="party",
        party="seller",
    ),
    _c(
        "seller_address",
        "postal address of the seller, supplier or merchant that issued the document",
        "address street postal location",
        "address|adresse|direccion|indirizzo|adres|alamat",
        role="address",
        party="seller",
    ),
    _c(
        "buyer_name",
        "name of the buyer or customer the invoice is addressed to: bill to",
        "name buyer customer client recipient bill billed sold",
        "bill to|billed to|invoice to|sold to|customer|client|buyer|recipient|ship to|kaufer|"
        "rechnungsempfanger|kunde|empfanger|rechnung an|facture a|facturer a|client|"
        "facturar a|cliente|destinatario|klant|factuur aan|afnemer|pelanggan|bil kepada|kepada",
        role="party",
        party="buyer",
    ),
    _c(
        "buyer_address",
        "postal address of the buyer or customer",
        "address street postal location billing",
        "address|billing address|adresse|direccion|indirizzo|adres|alamat",
        role="address",
        party="buyer",
    ),
    _c(
        "line_items",
        "line items: the positions of the item table with description, quantity, price and amount",
        "items lines positions line products articles",
        "",
        role="items",
    ),
    _c(
        "item_description",
        "description of the goods or service on one line of the item table",
        "description desc name item product article text",
        "description|item|items|item description|product|article|details|particulars|service|"
        "beschreibung|bezeichnung|artikel|leistung|position|designation|description|article|"
        "descripcion|concepto|articulo|descrizione|articolo|omschrijving|artikel|keterangan|"
        "perihal|butiran|barang",
        scope="item",
    ),
    _c(
        "item_number",
        "article number or item code on one line of the item table",
        "code sku article number item no",
        "item no|item #|code|sku|art no|article no|artikelnummer|art nr|reference|ref|codigo|codice|"
        "artikelnummer|kod",
        scope="item",
    ),
    _c(
        "item_quantity",
        "quantity on one line of the item table",
        "quantity qty count pieces",
        "qty|quantity|quantities|menge|anzahl|quantite|qte|cantidad|cant|quantita|qta|aantal|"
        "kuantiti|bil|unit qty",
        scope="item",
    ),
    _c(
        "item_unit",
        "unit of measure on one line of the item table",
        "unit uom measure",
        "unit|uom|einheit|unite|unidad|unita|eenheid|unit ukuran",
        scope="item",
    ),
    _c(
        "item_unit_price",
        "unit price: the price per unit on one line of the item table",
        "unit price rate each",
        "unit price|price|rate|unit cost|price each|u price|einzelpreis|preis|e preis|stuckpreis|"
        "prix unitaire|prix|pu|p u|precio unitario|precio|prezzo unitario|prezzo|stukprijs|prijs|"
        "harga|harga seunit|harga unit",
        scope="item",
    ),
    _c(
        "item_amount",
        "amount of one line of the item table: quantity times unit price",
        "amount total line sum net",
        "amount|total|line total|amt|net amount|betrag|gesamtpreis|gesamt|summe|montant|total|"
        "importe|total|importo|totale|bedrag|totaal|jumlah|amaun",
        scope="item",
    ),
    _c(
        "item_tax_rate",
        "tax rate percentage on one line of the item table",
        "tax vat rate percent",
        "tax|vat|vat %|tax %|tax rate|gst %|mwst|ust|mwst %|tva|tva %|iva|iva %|btw|btw %|cukai",
        scope="item",
    ),
)

BY_KEY: dict[str, Concept] = {c.key: c for c in CONCEPTS}

# Words that name a document rather than a party: never a company name.
TITLE_WORDS = frozenset(
    [
        "invoice",
        "tax",
        "invoice",
        "receipt",
        "official",
        "receipt",
        "cash",
        "bill",
        "simplified",
        "bill",
        "rechnung",
        "facture",
        "factura",
        "fattura",
        "factuur",
        "invois",
        "resit",
        "quotation",
        "credit",
        "note",
        "statement",
        "order",
    ]
)
LEGAL_SUFFIXES = (
    "sdn bhd",
    "sdn. bhd",
    "bhd",
    "enterprise",
    "trading",
    "gmbh",
    "ag",
    "kg",
    "ltd",
    "limited",
    "llc",
    "inc",
    "corp",
    "corporation",
    "company",
    "co.",
    "b.v.",
    "bv",
    "n.v.",
    "s.a.",
    "sa",
    "sarl",
    "sas",
    "s.l.",
    "s.r.l.",
    "srl",
    "spa",
    "s.p.a.",
    "plc",
    "pty",
    "restaurant",
    "store",
    "shop",
    "services",
    "hardware",
    "mart",
    "supermarket",
)


# ------------------------------------------------------------------------------------------------------
# words the page reader recognises beside labels (``extract.py``)


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


CURRENCY_CODES = frozenset(
    ("EUR", "USD", "GBP", "CHF", "INR", "MYR", "RM", "SGD", "JPY", "CNY", "AUD", "CAD")
)

STOP_WORDS = frozenset(
    [
        "tel",
        "te1",
        "tei",
        "fax",
        "phone",
        "hp",
        "email",
        "gst",
        "gstid",
        "gstno",
        "sst",
        "invoice",
        "taxinvoice",
        "receipt",
        "served",
        "cashier",
        "date",
        "doc",
        "bill",
        "cash",
        "table",
        "counter",
    ]
)

# Words after a label that make it name something else: "Total 0% supplies", "Total excl. GST".
QUALIFIERS = _words(
    "sub excl exclusive excluding excluded before supplies supply saving savings discount disc qty "
    "quantity item items count tendered change"
)

# Words before a label that make it name the customer's value.
OTHER_PARTY = frozenset(["your", "uw", "ihre", "ihr", "votre", "vos", "su", "customer", "client", "kunden"])

# Lines where a receipt turns from what is owed to how it was paid: what was handed over ...
TENDER_WORDS = _words(
    "cash tunai tendered tender paid payment visa mastercard master card credit debit bar gegeben "
    "especes espece efectivo contanti contant"
)
# ... and what was given back.
CHANGE_WORDS = _words("change baki kembali ruckgeld wechselgeld rendu monnaie cambio vuelto resto wisselgeld")
PAYMENT_WORDS = TENDER_WORDS | CHANGE_WORDS
# A line that rounds the total to the nearest coin ("Rounding -0.01", "Rundung", "Pembulatan").
ROUNDING_WORDS = _words("rounding rundung pembulatan arrondi arrotondamento redondeo afronding")

# Short words that are frequent in one language's business documents and rare in the others':
# enough hits on a page name its language (``document_language``).
LANGUAGE_WORDS: dict[str, frozenset[str]] = {
    "en": _words("the and of for to with invoice date total amount tax due paid thank you please no"),
    "de": _words(
        "und der die das mit fur bis von nicht uhr summe betrag rechnung datum mwst ust netto brutto"
    ),
    "fr": _words("et le la les des du pour au avec facture montant tva ttc ht merci date"),
    "es": _words("el la los las del y para con factura fecha importe iva gracias"),
    "it": _words("il lo gli le di del e per con fattura data importo iva grazie"),
    "nl": _words("de het een en van voor met factuur datum bedrag btw bedankt"),
    "ms": _words("dan yang untuk jalan taman jumlah tunai baki cukai terima kasih"),
}
MIN_LANGUAGE_HITS = 3

# Property names (as sets of name words, the document's own kind left out: "invoice_date") for the
# total and the date every invoice and receipt prints.
EXPECTED_NAMES = frozenset(
    frozenset(name.split())
    for name in (
        "total",
        "amount",
        "total amount",
        "grand total",
        "gross total",
        "gross amount",
        "total payable",
        "amount payable",
        "total due",
        "amount due",
        "date",
        "issue date",
        "date issued",
        "issued",
    )
)
DOCUMENT_WORDS = frozenset(["invoice", "receipt", "document", "bill", "transaction", "purchase", "sale"])

ADDRESS_WORDS = _words(
    "jalan jln lorong lrg taman tmn lot no floor flr level lvl street st road rd avenue ave blok "
    "block unit suite persiaran lebuh kampung kg"
)

# States and countries: the last line of an address, after the postcode.
REGIONS = _words(
    "selangor johor kedah kelantan perak pahang melaka malacca sabah sarawak penang pinang negeri "
    "sembilan terengganu perlis labuan putrajaya wilayah persekutuan darul ehsan takzim malaysia "
    "singapore kl d e kuala lumpur indonesia thailand india germany deutschland france netherlands "
    "nederland belgium belgique spain espana italy italia austria switzerland schweiz uk united kingdom "
    "usa us america ireland"
)


# Regions of day-first countries: an address there settles how its numeric dates are written.
DAY_FIRST_REGIONS = REGIONS - _words("usa us america d e kl")

# Words that name a party's role or a field on forms, printed as labels and never a name or value.
ROLE_WORDS = _words(
    "id nummer number nr no kaufer kaeufer kunde kunden empfanger warenempfanger rechnungsempfanger "
    "lieferant lieferanschrift verkaufer absender anschrift adresse name firma datum betrag "
    "acheteur vendeur client destinataire expediteur fournisseur adresse nom montant "
    "comprador vendedor cliente destinatario proveedor direccion nombre fecha importe "
    "acquirente venditore cliente destinatario fornitore indirizzo nome importo "
    "koper verkoper klant ontvanger leverancier adres naam datum bedrag "
    "buyer seller customer recipient supplier vendor address name date amount total"
)

_FOLD_WORDS = re.compile(r"[a-z0-9]+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def name_words(name: str) -> list[str]:
    """``amount_untaxed`` / ``amountUntaxed`` -> ["amount", "untaxed"]."""
    return _FOLD_WORDS.findall(_CAMEL.sub(" ", name).lower().replace("_", " ").replace("-", " "))


def fold_phrase(text: str) -> str:
    """Lower case, accents and punctuation removed, words separated by single spaces ("Käufer:" ->
    "kaufer"), the form the lexicon is written in."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return " ".join(_FOLD_WORDS.findall(plain.replace("ß", "ss")))


_ROLE_ONLY = ROLE_WORDS | STOP_WORDS | QUALIFIERS | OTHER_PARTY


def document_language(folded_words: list[str]) -> str | None:
    """The language most of ``folded_words`` (as :func:`fold_phrase` writes them) belong to, when
    at least ``MIN_LANGUAGE_HITS`` of them do and no other language has as many; else None."""
    hits = {language: sum(w in words for w in folded_words) for language, words in LANGUAGE_WORDS.items()}
    ranked = sorted(hits.items(), key=lambda kv: -kv[1])
    best, count = ranked[0]
    return best if count >= MIN_LANGUAGE_HITS and count > ranked[1][1] else None


@cache
def known_words() -> frozenset[str]:
    """Every word the lexicon knows, in any of its languages: a page with almost none of them is in
    a language (or a kind of document) the reading was not built for."""
    label_words = {word for phrase in _label_phrases() for word in phrase.split()}
    return frozenset(label_words.union(*LANGUAGE_WORDS.values()))


@cache
def _label_phrases() -> frozenset[str]:
    labels = {fold_phrase(label) for concept in CONCEPTS for label in concept.labels}
    labels |= {fold_phrase(suffix) for suffix in LEGAL_SUFFIXES}  # "GmbH" alone names nobody
    return frozenset(labels | TITLE_WORDS | STOP_WORDS | ROLE_WORDS | QUALIFIERS | PAYMENT_WORDS)


def is_label(text: str) -> bool:
    """Whether ``text`` as a whole is a printed label, a role or a document title ("Rechnungsdatum",
    "Käufer:", "Invoice No.", "GmbH"), or made of role words only ("CUSTOMER NO"), not a value."""
    folded = fold_phrase(text)
    return bool(folded) and (folded in _label_phrases() or set(folded.split()) <= _ROLE_ONLY)


@cache
def label_phrases(name_words: tuple[str, ...], aliases: tuple[str, ...] = ()) -> frozenset[str]:
    """The folded phrases that may label a field: its name ("store name"), its ``x-aliases``, and
    the labels of the concepts its name words point at ("phone" -> "tel", "telefon", ...)."""
    phrases = {fold_phrase(" ".join(name_words)), *(fold_phrase(a) for a in aliases)}
    for concept in concepts_named(name_words):
        phrases.update(fold_phrase(label) for label in concept.labels)
    return frozenset(p for p in phrases if p)


@cache
def concepts_named(name_words: tuple[str, ...]) -> tuple[Concept, ...]:
    """The concepts a property's name words point at most ("buyer_name": the buyer's name, not
    every name; "date": every date, which of them the page says)."""
    words = set(name_words)
    overlap = {concept.key: len(words & concept.keywords) for concept in CONCEPTS}
    best = max(overlap.values(), default=0)
    return tuple(c for c in CONCEPTS if best and overlap[c.key] == best)


def expected_on_every_document(name_words: tuple[str, ...]) -> bool:
    """Whether a property names what every invoice and receipt prints, its total or its date, and
    nothing more specific ("date_due" and "total_tax" do not): a null there is a value not found,
    for a person to look for, not one the document lacks."""
    return frozenset(name_words) - DOCUMENT_WORDS in EXPECTED_NAMES
