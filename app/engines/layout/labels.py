"""Labels on a page: the folded tokens of a segment and where a field's label sits in them."""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.engines.layout.page import Segment
from app.lexicon import CURRENCY_CODES, OTHER_PARTY, QUALIFIERS
from app.lexicon import fold_phrase as fold

PART_BREAK = re.compile(r"\s[-\u2013\u2014|•\u2212]\s|;|\|")
_LOOKALIKE = str.maketrans("015", "ols")


@dataclass
class Label:
    field: int
    segment: Segment
    start: int
    """Character offset in the segment's text where the value may start."""
    coverage: float
    length: int
    token_span: tuple[int, int]


def char_tokens(text: str) -> list[tuple[str, int, int]]:
    """Folded tokens of ``text`` with their character spans (so a value can be cut after a label)."""
    tokens: list[tuple[str, int, int]] = []
    current, start = "", 0
    for i, ch in enumerate(text):
        folded = fold(ch) if ch.isalnum() else ""
        if folded:
            if not current:
                start = i
            current += folded.replace(" ", "")
        elif current:
            tokens.append((current, start, i))
            current = ""
    if current:
        tokens.append((current, start, len(text)))
    return [(_ocr_letters(t), s, e) for t, s, e in tokens]


def _ocr_letters(token: str) -> str:
    """A word OCR misread with a digit for a letter ("Tota1", "T0TAL") read as the word (for
    labels only: values keep their text)."""
    letters = sum(c.isalpha() for c in token)
    if letters >= 3 and 0 < len(token) - letters <= 2 and all(c.isalpha() or c in "015" for c in token):
        return token.translate(_LOOKALIKE)
    return token


def find_label(segment: Segment, labels: tuple[str, ...], tokens: list[tuple[str, int, int]]) -> Label | None:
    """The best of ``labels`` in the segment: near its start, covering most of the label part."""
    tokens = [
        t for t in tokens if t[0].upper() not in CURRENCY_CODES or not segment.text[t[1] : t[2]].isupper()
    ]
    words = [t for t, _, _ in tokens]
    part_starts = _part_starts(segment.text, tokens)
    best: Label | None = None
    present = set(words)
    for phrase in labels:
        parts = phrase.split()
        compact = "".join(parts)
        if parts[0] not in present and compact not in present:
            continue
        for start in range(len(words)):
            if words[start : start + len(parts)] == parts:
                end = start + len(parts)
            elif len(parts) > 1 and words[start] == compact:
                end = start + 1
            else:
                continue
            char_end = tokens[end - 1][2]
            before = segment.text[max(tokens[start][1] - 1, 0) : tokens[start][1]]
            if segment.text[char_end : char_end + 1] in ("_", "@") or before in ("_", "@"):
                continue
            prefix = start - max((p for p in part_starts if p <= start), default=0)
            if prefix > 3:
                continue
            colon = segment.text.find(":", char_end)
            extra = 0
            if colon != -1:
                extra = sum(1 for _, s, _ in tokens if char_end <= s < colon)
                if extra <= 3:
                    char_end = colon + 1
                else:
                    extra = 0
            qualifiers = sum(1 for t, s, _ in tokens if s >= char_end and t in QUALIFIERS)
            coverage = len(parts) / (prefix + len(parts) + extra + 2 * qualifiers)
            # "Your VAT number", "Uw BTW nummer": the customer's, not the issuer's
            coverage *= 0.4 if start and words[start - 1] in OTHER_PARTY else 1.0
            if best is None or (coverage, len(phrase)) > (best.coverage, best.length):
                best = Label(-1, segment, char_end, coverage, len(phrase), (start, end))
            break
    return best


def _part_starts(text: str, tokens: list[tuple[str, int, int]]) -> list[int]:
    """Indexes of the tokens that begin a part of the segment (after " - ", "|" or ";")."""
    starts = [0]
    for match in PART_BREAK.finditer(text):
        following = next((i for i, (_, s, _) in enumerate(tokens) if s >= match.end()), None)
        if following is not None:
            starts.append(following)
    return starts


def phrase_at(words: list[str], labels: tuple[str, ...]) -> tuple[int, int] | None:
    for phrase in labels:
        parts = phrase.split()
        for start in range(len(words) - len(parts) + 1):
            if words[start : start + len(parts)] == parts:
                return start, start + len(parts)
    return None
