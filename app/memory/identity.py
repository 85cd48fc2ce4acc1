"""Who sent a document, from its words alone: the identities a sender memory is found by.

- ``vat:<id>`` and ``iban:<iban>``: strong. Found by their check digits (the trust layer's
  readers) in runs of up to nine words of one line; one the page says is the customer's ("Your VAT
  no.", "Kunden-USt-IdNr.") is not the sender's.
- ``name:<folded name>``: the issuer's name at the top of page 1, as the layout engine's header
  reader picks it (the same reader on the same template picks the same line).
- ``layout:<labels>``: the labels of page 1's header (the rows above the first amount, where the
  items and totals begin), in order, each with the third of the page it stands in. Two layouts
  match when most of their labels do (OCR may lose or split one); many senders may share a
  template, so a layout never decides alone.

A memory matches a document when a strong identity matches, unless both the name and the layout
say another sender (a customer's own VAT id printed on every supplier's invoice, a payment
provider's IBAN), and unless each prints its own VAT id (a sender has one; an IBAN may be
shared). Without one, it matches when the document's header name is the one an approval
confirmed as the seller's (``seller:<folded name>``: the reviewed data's seller name printed at the
top; a receipt's title such as "Ticket de caisse" never is) and the layouts do not differ; never
when each prints its own, different VAT id or IBAN.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from difflib import SequenceMatcher

from app.documents.textmap import PageMap
from app.engines.layout.labels import char_tokens
from app.engines.layout.page import PageLayout, Segment, build_layout
from app.engines.layout.parties import HeaderReader
from app.lexicon import CONCEPTS, OTHER_PARTY, fold_phrase, is_label
from app.pages import Word, visual_rows
from app.trust.kinds.codes import read_iban, read_vat_id

STRONG = ("vat", "iban")
MAX_RUN = 9
"""Words an IBAN may be printed in (groups of four: up to 34 characters)."""
MIN_LAYOUT_LABELS = 2
MAX_LAYOUT_LABELS = 16
LAYOUT_SIMILARITY = 0.8
"""The share of labels two header layouts have in common, in order (difflib's ratio), to match."""
_AMOUNT = re.compile(r"(?<![\d.,])\d{1,3}(?:[.,' ]\d{3})*[.,]\d\d(?![\d.,])")
"""Money with cents, not a date ("28.08.2022")."""
BUYER_LABELS = frozenset(
    fold_phrase(label) for c in CONCEPTS if c.party == "buyer" and c.role == "party" for label in c.labels
)


def identify(pages: Sequence[PageMap]) -> list[str]:
    """The sender identities printed on ``pages`` (the first one for the name and the layout),
    strong ones first, without duplicates."""
    found: dict[str, None] = {}
    for page in pages:
        for line in _lines(page.words):
            found.update(dict.fromkeys(_codes(line)))
    if pages:
        first = pages[0]
        name = header_name(first)
        if name:
            found[f"name:{name}"] = None
        layout = layout_fingerprint(first)
        if layout:
            found[f"layout:{layout}"] = None
    return sorted(found, key=lambda identity: identity.split(":", 1)[0] not in STRONG)


def strong(identities: Iterable[str]) -> set[str]:
    return {i for i in identities if i.split(":", 1)[0] in STRONG}


def of_kind(identities: Iterable[str], kind: str) -> set[str]:
    return {i for i in identities if i.startswith(f"{kind}:")}


def matches(remembered: Sequence[str], document: Sequence[str]) -> int:
    """How well a memory's identities fit a document's: 0 for another sender; otherwise more for
    more shared identities (the best of several matching memories wins)."""
    codes = strong(remembered) & strong(document)
    names = bool(of_kind(remembered, "name") & of_kind(document, "name"))
    layouts = similar_layouts(of_kind(remembered, "layout"), of_kind(document, "layout"))
    if not codes and strong(remembered) and strong(document):
        return 0  # each prints its VAT id or IBAN, and they differ: two senders with one template
    vat_ids = of_kind(remembered, "vat"), of_kind(document, "vat")
    if all(vat_ids) and not vat_ids[0] & vat_ids[1]:
        return 0  # a sender has one VAT id (an IBAN may be a payment provider's, shared)
    if codes:
        contradicted = (
            of_kind(remembered, "name")
            and of_kind(document, "name")
            and not names
            and of_kind(remembered, "layout")
            and of_kind(document, "layout")
            and not layouts
        )
        return 0 if contradicted else 2 * len(codes) + names + layouts
    # Without a code, the name at the top must be the one an approval confirmed as the seller's: a
    # receipt's title ("Ticket de caisse", "Kassabon") is printed by every shop of a template.
    confirmed = {i.split(":", 1)[1] for i in of_kind(remembered, "seller")}
    named = {i.split(":", 1)[1] for i in of_kind(document, "name")}
    differ = of_kind(remembered, "layout") and of_kind(document, "layout") and not layouts
    return 1 + layouts if confirmed & named and not differ else 0


def similar_layouts(remembered: Iterable[str], document: Iterable[str]) -> bool:
    """Whether a header layout of the memory and the document's share most of their labels, in order."""
    for a in remembered:
        for b in document:
            ratio = SequenceMatcher(None, a.split(":", 1)[1].split(), b.split(":", 1)[1].split()).ratio()
            if ratio >= LAYOUT_SIMILARITY:
                return True
    return False


def primary(identities: Sequence[str]) -> str:
    """The identity a memory is named by: its first strong one, else its name, else its layout."""
    for kind in (*STRONG, "name", "layout"):
        for identity in identities:
            if identity.startswith(f"{kind}:"):
                return identity
    return identities[0]


def header_name(page: PageMap) -> str | None:
    """The issuer's name at the top of the first page, folded; None when none reads as one."""
    if page.number != 1 or not page.words:
        return None
    layout = build_layout(page.words, page.width, page.height)
    tokens = {s.index: char_tokens(s.text) for s in layout.segments}
    names = [
        candidate
        for candidate in HeaderReader(layout, tokens, {}, page.number).names()
        if not is_label(str(candidate.value))
        and not _after_buyer_label(layout, layout.segments[candidate.segment])
    ]
    if not names:
        return None
    words = fold_phrase(str(max(names, key=lambda c: c.score).value)).split()
    while words and is_label(words[0]):
        words.pop(0)  # "Supplier: Crème & Co. Ltd" on one line
    return " ".join(words)[:150] or None


def _after_buyer_label(layout: PageLayout, segment: Segment) -> bool:
    """Whether a name is the customer's: after "Bill to", "Kunde", "Client" on its row or in the
    cell above it (the customer's name is printed on every supplier's invoice)."""
    row = layout.rows[segment.row]
    before = " ".join(s.text for s in row if s.box[0] < segment.box[0]) + " " + segment.text
    texts = [before]
    if segment.row:
        above = [
            s for s in layout.rows[segment.row - 1] if s.box[0] < segment.box[2] and s.box[2] > segment.box[0]
        ]
        texts += [s.text for s in above]
    padded = [f" {fold_phrase(text)} " for text in texts]
    return any(f" {label} " in text for text in padded for label in BUYER_LABELS)


def layout_fingerprint(page: PageMap) -> str | None:
    """The labels of the page's header (the rows above the first amount but the last: below it,
    items and totals move from one document to the next), in reading order, each with the third
    of the page it stands in ("factura@2 proveedor@0 ..."); None with fewer than two labels."""
    rows: list[list[str]] = []
    for row in visual_rows(page.words, _line_height(page.words)):
        if any(_AMOUNT.search(word.text) for word in row):
            break
        rows.append([_placed(w) for w in row if is_label(w.text)])
    # The row just above the first amount is a table's header, which a skewed scan may merge with
    # that amount's row: left out.
    labels = [label for row in rows[:-1] for label in row]
    if len(labels) < MIN_LAYOUT_LABELS:
        return None
    return " ".join(labels[:MAX_LAYOUT_LABELS])


def _placed(word: Word) -> str:
    return f"{fold_phrase(word.text).replace(' ', '_')}@{min(int(word.bbox[0] * 3), 2)}"


def _line_height(words: list[Word]) -> float:
    heights = sorted(w.bbox[3] - w.bbox[1] for w in words)
    return heights[len(heights) // 2] if heights else 0.01


def _lines(words: list[Word]) -> list[list[Word]]:
    lines: dict[int, list[Word]] = {}
    for word in words:
        lines.setdefault(word.line, []).append(word)
    return [sorted(line, key=lambda w: w.bbox[0]) for _, line in sorted(lines.items())]


def _codes(line: list[Word]) -> list[str]:
    """The VAT ids and IBANs printed on one line (not the customer's)."""
    found: list[str] = []
    start = 0
    while start < len(line):
        first = line[start].text
        if not (len(first) >= 2 and first[:2].isalpha() and first[:2].isupper()):
            start += 1
            continue
        end, identity = _longest_code(line, start)
        before = set(fold_phrase(" ".join(w.text for w in line[max(0, start - 4) : start])).split())
        if identity is not None and not before & OTHER_PARTY:
            found.append(identity)
        start = end if identity is not None else start + 1
    return found


def _longest_code(line: list[Word], start: int) -> tuple[int, str | None]:
    for end in range(min(len(line), start + MAX_RUN), start, -1):
        text = "".join(w.text for w in line[start:end]).strip(".,;:()")
        if iban := read_iban(text):
            return end, f"iban:{iban}"
        if vat := read_vat_id(text):
            return end, f"vat:{vat}"
    return start + 1, None
