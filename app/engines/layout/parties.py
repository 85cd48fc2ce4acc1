"""Party names and addresses as printed, and the header block they are read from: legal forms,
document titles beside the name, and the lines that still belong to an address."""

from __future__ import annotations

import re

from app.engines.layout.labels import PART_BREAK, Label
from app.engines.layout.page import PageLayout, Segment
from app.engines.layout.spacing import guesses, respace
from app.engines.layout.values import HAS_DIGIT, Candidate, parse_dates
from app.lexicon import ADDRESS_WORDS, LEGAL_SUFFIXES, REGIONS, STOP_WORDS, TITLE_WORDS
from app.lexicon import fold_phrase as fold

_TRAILING_REGISTRATION = re.compile(r"\s*[(\uff08][^()\uff08\uff09]*\d[^()\uff08\uff09]*[)\uff09]?\s*$")
POSTCODE = re.compile(r"(?<![\d-])\d{5}(?![\d-])")
_STOP_ADDRESS = re.compile(
    r"\b(tel|telephone|phone|fax|hp|h/p|email|e-mail|gst|sst|vat|reg|co\.? ?no|company no|invoice|"
    r"receipt|date|cashier|table|www|http|tax|mobile|whatsapps?|careline|site|brn|company)\b",
    re.IGNORECASE,
)
_REGISTRATION = re.compile(
    r"[(\uff08]?\s*(?:co\.?\s*(?:reg\.?)?\s*no\.?[:\s]*)?[A-Z]{0,3}\d[\d\s-]{3,}-?\s*[A-Z]?\s*[)\uff09]?",
    re.IGNORECASE,
)
_LEGAL_FORMS = re.compile(r"(?i)(?<=\W)(sdn\.?|bhd\.?|s/b|ltd\.?|limited|inc\.?|llc|gmbh|co\.|\(m\))(?=\W)")
# Labels OCR glued to their value: "GSTIDNo:0003", "COREGN0:21003B-K", "Tel:03-5542".
_GLUED_STOP = re.compile(
    r"(?i)^[(\[]?(tel|te1|fax|gst|sst|reg|co\.?reg|brn|roc|company|hp|h/p|email|www)|reg\.?n[o0]|reg:"
)
_PHONE = re.compile(r"(?<!\d)\+?\d{2,4}[- ]\d{3,4}[- ]?\d{3,5}(?!\d)")
# How far a value taken from the page's layout alone (the first lines of a receipt) is to be
# trusted, and how much each space or character the OCR repair had to guess takes off.
HEADER_RELIABILITY = 0.5
LEGAL_HEADER_RELIABILITY = 0.8
"""A name with its legal form ("... SDN BHD", "... GmbH") at the top of the first page is nearly
always the issuer's."""
GUESS_FACTOR = 0.93
_ODD_NAME = re.compile(r"[A-Za-z]\d|\d[A-Za-z]{2}|^[a-z]|\s[a-z]+\s[A-Z]")


def is_legal(folded: str) -> bool:
    padded = f" {folded} "
    return any(f" {fold(suffix)} " in padded for suffix in LEGAL_SUFFIXES)


def party_name(text: str) -> str:
    """A company name as printed, without the document title beside it ("ACME Ltd Invoice") or the
    address after a dash or bar ("QualityHosting AG - Uferweg 40")."""
    parts = [p.strip(" ,") for p in PART_BREAK.split(text) if p.strip(" ,")]
    text = next((p for p in parts if is_legal(fold(p))), parts[0] if parts else "")
    words = text.split()
    while words and fold(words[-1]) in TITLE_WORDS:
        words.pop()
    while words and fold(words[0]) in TITLE_WORDS:
        words.pop(0)
    return _TRAILING_REGISTRATION.sub("", " ".join(words)).strip(" ,")


def addressy(text: str) -> bool:
    """Whether a line reads as part of an address: a street word with a number, or a postcode."""
    folded = f" {fold(text)} "
    return bool(POSTCODE.search(text)) or (
        bool(HAS_DIGIT.search(text)) and any(f" {w} " in folded for w in ADDRESS_WORDS)
    )


def region_line(text: str) -> bool:
    """A line after the postcode that still belongs to the address: the state or the country."""
    words = fold(text).split()
    return bool(words) and not HAS_DIGIT.search(text) and sum(w in REGIONS for w in words) * 2 >= len(words)


def starts_with_legal_form(name: str) -> bool:
    folded = fold(name)
    return any(folded.startswith(fold(suffix)) for suffix in LEGAL_SUFFIXES) or folded.startswith("co ")


class HeaderReader:
    """The header block of a page: the issuer's name near the top (a guess from the layout alone,
    scored as one) and the address lines under a name."""

    def __init__(
        self,
        layout: PageLayout,
        tokens: dict[int, list[tuple[str, int, int]]],
        labels: dict[int, list[Label]],
        page: int,
    ) -> None:
        self.layout = layout
        self.tokens = tokens
        self.labels = labels
        self.page = page

    def spaced(self, segment: Segment) -> str:
        """The segment's text, with the spaces OCR dropped put back (a text layer keeps its own)."""
        text = segment.text.strip()
        return respace(text) if any(w.source == "ocr" for w in segment.words) else text

    def names(self) -> list[Candidate]:
        """The issuer's name: a line near the top that reads like a company (a legal form helps),
        not a document title, a label, a date, an address or a number. A name read from the
        layout alone is a guess, and its score says so: lower without a legal form, for letters
        OCR likely misread, and for each space or character the OCR repair had to guess."""
        if self.page != 1:
            return []
        found: list[Candidate] = []
        rank = 0
        for segment in sorted(self.layout.segments, key=lambda s: (s.row, s.box[0])):
            if segment.box[1] > 0.4 * self.layout.height or rank >= 6:
                break
            text = self.spaced(segment)
            name = self._name_in(segment, text)
            if not name:
                continue
            legal = is_legal(fold(name))
            score = 0.6 * (0.8**rank)
            if legal:
                score = min(0.92, 1.5 * score)
            if segment.height > 1.3 * self.layout.line_height:
                score = min(0.95, score * 1.15)
            if addressy(name):
                score *= 0.3
            previous = list(self.layout.rows[segment.row - 1]) if segment.row else []
            if previous and legal and self._wrapped(previous[0], segment, name):
                # "POPULAR BOOK" / "CO. (M) SDN BHD": the name wrapped before its legal form
                name = f"{self.spaced(previous[0])} {name}"
            reliability = LEGAL_HEADER_RELIABILITY if legal else HEADER_RELIABILITY
            score *= reliability * GUESS_FACTOR ** guesses(segment.text, text)
            if not legal:
                score *= 0.4  # as likely a branch, a slogan or a logo read as text
            if _ODD_NAME.search(name):
                score *= 0.4  # "URBAN 1DEA", "buardian Health": letters OCR misread
            found.append(Candidate(name, name, score, segment.index))
            rank += 1
        return found

    def _name_in(self, segment: Segment, text: str) -> str:
        """The company name a header line may hold, or "" for a line that is no name."""
        folded = fold(text)
        if (
            sum(c.isalpha() for c in text) < 3
            or folded in TITLE_WORDS
            or "@" in text
            or "www" in folded
            or (_STOP_ADDRESS.search(text) and not is_legal(folded))
            or (text.startswith(("(", "\uff08")) and text.endswith((")", "\uff09")))  # a note under it
            or any(
                segment.index == lab.segment.index
                for labs in self.labels.values()
                for lab in labs
                if lab.coverage >= 0.5
            )
        ):
            return ""
        name = party_name(text)
        if sum(c.isalpha() for c in name) < 0.6 * len(name.replace(" ", "")):
            return ""  # mostly digits: a number, a logo read as text
        return name

    def _wrapped(self, above: Segment, segment: Segment, name: str) -> bool:
        """Whether the line above holds the start of this name: the name is little more than its
        legal form, and the line above is close, of words only, and names nothing else."""
        words = [w for w in fold(_LEGAL_FORMS.sub(" ", f" {name} ")).split() if w not in ("m", "co")]
        text = above.text.strip()
        return (starts_with_legal_form(name) or len(words) <= 1) and (
            segment.box[1] - above.box[3] < 1.5 * self.layout.line_height
            and not HAS_DIGIT.search(text)
            and sum(c.isalpha() for c in text) >= 3
            and fold(text) not in TITLE_WORDS
            and not _STOP_ADDRESS.search(text)
            and not is_legal(fold(text))
            and text.isupper() == name.isupper()
        )

    def block_after(self, start: Segment) -> list[Segment]:
        """The address lines under a name. Registration numbers, dates and bracketed notes between
        the name and the address are passed over (two at most); the block ends at a gap, a phone, a
        label, or, once the postcode is in, at anything but a short line of words (a state)."""
        unit = self.layout.line_height
        lines: list[Segment] = []
        last, skipped, postcode = start, 0, False
        for row in self.layout.rows[start.row + 1 : start.row + 10]:
            below = [s for s in row if s.box[0] < last.box[2] + unit and s.box[2] > start.box[0] - 2 * unit]
            if not below or below[0].box[1] - last.box[3] > 1.5 * unit:
                break
            segment = below[0]
            text = self.spaced(segment)
            if self._not_address(segment, text):
                if lines or skipped >= 2:
                    break
                skipped += 1
                last = segment
                continue
            if postcode and not region_line(text):
                break
            lines.append(segment)
            last = segment
            postcode = postcode or bool(POSTCODE.search(text))
        return lines[:6]

    def _not_address(self, segment: Segment, text: str) -> bool:
        raw = segment.text.strip()
        stops = {t for t, _, _ in self.tokens[segment.index][:3]} & STOP_WORDS
        return bool(
            stops
            or _REGISTRATION.fullmatch(raw)
            or (raw.startswith(("(", "\uff08")) and raw.endswith((")", "\uff09")))
            or _STOP_ADDRESS.search(raw)
            or _STOP_ADDRESS.search(text)
            or _GLUED_STOP.search(raw.replace(" ", ""))
            or _PHONE.search(raw)
            or "@" in raw
            or parse_dates(raw)
            or any(segment.index == lab.segment.index for labs in self.labels.values() for lab in labs)
        )
