"""Auto-accept is earned by corroboration, not by a score.

A value goes into the ERP without a person looking only when independent evidence agrees with it;
whatever a heuristic score says, a value without such evidence goes to review with the reason (in
brackets below). What counts, by kind:

- every value: printed exactly as read (`inexact_evidence`), as whole words, not inside
  "28.03.2009:51Uhr" (`glued`), read by OCR surely, every word at 0.9 or more (`ocr_unsure`), not a
  printed label: "Käufer", "Rechnungsdatum", "GmbH" (`label_as_value`, `label_in_value`), and no
  rival reading nearly as sure, another total or another name (`rival`), unless a check or the
  payment arithmetic settles it;
- amounts and percentages: a declared check that passed with its other values read from *other*
  lines (a VAT summary row is consistent with itself, so a check within one row proves nothing
  about which row is the total), the payment arithmetic of the document (cash handed over less
  change; a total above the rounding line plus the rounding: :mod:`app.trust.facts`), or, beside a
  label, the same amount printed on another line too: the total and "Cash"/"zu zahlen"
  (`uncorroborated`); in a line item, whose row is given, a check within the row counts. On a page
  that prints money with cents, an amount printed without them lost its decimal point or had it
  read as grouping (`decimal_place`: "41.50" as 4150, "5,47" as 5.417);
- dates: a four-digit year printed (`two_digit_year`), a day/month order the document settles when
  both could be either (`ambiguous_date`: 04/05/2024 on a page with no other clue), and a label of
  the field beside or above it, or no other date on the document (`unlabelled`: a due date in the
  payment terms never passes for the issue date);
- IBANs and VAT ids: their check digits;
- text (names, numbers, addresses) and phone numbers: a label of the field beside or above it; a
  company name or phone number at the top of a receipt has none (`unlabelled`), so it is checked by
  a person;
- currencies: the exact, whole-word print.

This is deliberately strict: a finance team loses far more to a wrong value accepted silently than
to a right one checked once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from app.lexicon import fold_phrase, is_label
from app.pages import visual_rows
from app.schema.kinds import Kind
from app.trust.checks import CheckResult
from app.trust.facts import CENTS, NUMERIC_DATE, DocumentFacts
from app.trust.grounding import Evidence, Grounder
from app.trust.normalize import Normalized, printed_forms

SURE_OCR = 0.9
_EDGE = ".,:;()[]\"'*#"
_FOUR_DIGIT_YEAR = re.compile(r"(?<!\d)(1[89]|2\d)\d\d(?!\d)")
_CURRENCY_SIGNS = "€$£¥"


@dataclass(frozen=True)
class Verdict:
    support: tuple[str, ...]
    """What corroborates the value ("exact", "check:<rule>", "printed_twice", "check_digits", ...)."""
    doubt: str | None
    """The review reason's slug when the value is not corroborated; None when it is."""


def corroborate(
    kind: Kind,
    raw: object,
    normalized: Normalized,
    evidence: Evidence | None,
    checks: list[CheckResult],
    evidence_of: dict[str, Evidence | None],
    grounder: Grounder,
    facts: DocumentFacts,
    *,
    labels: frozenset[str] = frozenset(),
    in_item: bool = False,
    shared: bool = False,
    rival: bool = False,
    money: bool = True,
) -> Verdict:
    """Whether the value of one field is corroborated (see the module docstring). ``labels``: the
    folded phrases that may label the field (:func:`app.lexicon.label_phrases`). ``in_item``: the
    field belongs to a row of a list (a line item), where the row is given and a check within the
    row (quantity x price = amount) is independent evidence of the readings. ``shared``: another
    field of the document has the same value (a tax equal to the total), so the number being
    printed twice says nothing about which field it is. ``rival``: the engine read another value
    for the field nearly as surely; only a check with values from other lines or the payment
    arithmetic settles that.
    ``money``: an amount of money (not a quantity), which a page printing cents prints with them."""
    text = str(raw).strip()
    if evidence is None or normalized.status != "ok":
        return Verdict((), "uncorroborated")  # ungrounded / unparsed: reported as such too
    doubt = _doubt(text, normalized, evidence, kind) or _implausible(kind, evidence, facts, money=money)
    if doubt is not None:
        return Verdict((), doubt)
    support = ["exact"]
    confirmed: list[str] = []
    labelled = in_item or _labelled(evidence, labels, grounder)
    if labelled and not in_item:
        support.append("labelled")
    if kind in ("amount", "percent"):
        confirmed = _independent_checks(evidence, checks, evidence_of, same_line=in_item)
        if kind == "amount" and not in_item and isinstance(normalized.value, Decimal):
            confirmed += facts.paid(normalized.value, {(evidence.page, line) for line in evidence.lines})
        support += confirmed
        # Looked for only when no check confirms the value: a search per printed form.
        if (
            not confirmed
            and labelled
            and not shared
            and _printed_elsewhere(text, normalized, kind, evidence, grounder)
        ):
            support.append("printed_twice")
        doubt = None if confirmed or "printed_twice" in support else "uncorroborated"
    elif kind == "date":
        if _FOUR_DIGIT_YEAR.search(evidence.text) is None:
            return Verdict(tuple(support), "two_digit_year")
        support.append("four_digit_year")
        if facts.date_order is None and _ambiguous_order(evidence.text):
            return Verdict(tuple(support), "ambiguous_date")
        support += [f"date_order:{facts.date_order}"] if facts.date_order else []
        only = len(facts.dates) == 1
        support += ["only_date"] if only else []
        doubt = None if labelled or only else "unlabelled"
    elif kind in ("iban", "vat_id"):
        support.append("check_digits")
        doubt = None
    elif kind in ("text", "phone"):
        doubt = None if labelled else "unlabelled"
    if doubt is None and rival and not confirmed:
        doubt = "rival"  # checks and payment arithmetic settle it; being printed twice does not
    return Verdict(tuple(support), doubt)


def _doubt(text: str, normalized: Normalized, evidence: Evidence, kind: Kind) -> str | None:
    """What makes any value unfit to accept, whatever its kind."""
    if is_label(text):
        return "label_as_value"
    if (
        kind == "text"
        and len(text.split()) > 1
        and is_label(text.split(maxsplit=1)[0])
        and any(c.isdigit() for c in text)
    ):
        return "label_in_value"  # "ID 99018211", "Nr. 4711": the label was read with the value
    if evidence.method != "exact":
        return "inexact_evidence"
    if evidence.ocr_confidence is not None and evidence.ocr_confidence < SURE_OCR:
        return "ocr_unsure"
    if not _whole(text, evidence.text, normalized, kind):
        return "glued"
    return None


def _whole(text: str, printed: str, normalized: Normalized, kind: Kind) -> bool:
    """Whether the printed words are the value, not the value glued to more ("28.03.2009:51Uhr")."""
    found = "".join(printed.split()).strip(_EDGE).strip(_CURRENCY_SIGNS)
    forms = {text, *(printed_forms(normalized.value, kind) if normalized.status == "ok" else [])}
    return any("".join(form.split()).strip(_EDGE).strip(_CURRENCY_SIGNS) == found for form in forms if form)


def _independent_checks(
    evidence: Evidence, checks: list[CheckResult], evidence_of: dict[str, Evidence | None], *, same_line: bool
) -> list[str]:
    """Passed checks whose other values were read on other lines than this one (or anywhere, with
    ``same_line``), each from its own printed place."""
    here = set() if same_line else {(evidence.page, line) for line in evidence.lines}
    found = []
    for check in checks:
        if check.status != "passed":
            continue
        others = [evidence_of.get(p) for p in check.pointers]
        places = [{(e.page, line) for line in e.lines} for e in others if e is not None and e is not evidence]
        if places and all(not (p & here) for p in places) and len(places) == len(check.pointers) - 1:
            found.append(f"check:{check.rule}")
    return found


def _labelled(evidence: Evidence, labels: frozenset[str], grounder: Grounder) -> bool:
    """Whether a label of the field is printed left of the value on its row (after any other value
    there), or just above it on a row of its own: the words over the value are the label, and no
    value of their own follows them. Rows are visual: a PDF's label and value are often separate
    text blocks, and OCR may join a table's header cells into one line."""
    if not labels:
        return False
    page = grounder.pages[evidence.page]
    x0, y0, x1, y1 = evidence.bbox
    height = max(y1 - y0, 1e-3)
    row = sorted(
        (w for w in page.words if _overlap(w.bbox[1], w.bbox[3], y0, y1) >= 0.5 * height),
        key=lambda w: w.bbox[0],
    )
    left = [w.text for w in row if w.bbox[2] <= x0 + height / 2]
    after_values = left[max((i + 1 for i, t in enumerate(left) if _is_value(t)), default=0) :]
    folded = f" {fold_phrase(' '.join(after_values))} "
    if any(f" {label} " in folded for label in labels):
        return True
    above = [w for w in page.words if y0 - 2.5 * height <= w.bbox[3] <= y0 + height / 4 and w not in row]
    for words in visual_rows(above, height):
        over = [i for i, w in enumerate(words) if w.bbox[0] < x1 + height / 2 and w.bbox[2] > x0 - height / 2]
        if not over or fold_phrase(" ".join(words[i].text for i in over)) not in labels:
            continue
        beside = words[over[-1] + 1] if over[-1] + 1 < len(words) else None
        if (
            beside is None
            or beside.bbox[0] - words[over[-1]].bbox[2] > 1.5 * height
            or not _is_value(beside.text)
        ):
            return True
    return False


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return min(a1, b1) - max(a0, b0)


def _is_value(text: str) -> bool:
    """A word that is a value rather than part of a label ("19%" in "MwSt 19%" is the label's)."""
    return any(c.isdigit() for c in text) and not text.rstrip(").:").endswith("%")


def _implausible(kind: Kind, evidence: Evidence, facts: DocumentFacts, *, money: bool) -> str | None:
    """An amount printed without cents on a page that prints money with cents: a decimal point
    the OCR lost ("41.50" read "4150") or took for grouping ("5,47" read "5.417")."""
    if kind != "amount" or not money or not facts.prints_cents:
        return None
    return None if CENTS.match(evidence.text.strip()) else "decimal_place"


def _ambiguous_order(printed: str) -> bool:
    """A numeric date whose day and month could be either way round (04/05/2024)."""
    m = NUMERIC_DATE.search(printed)
    return bool(m and m[1] and int(m[1]) <= 12 and int(m[3]) <= 12 and m[1].lstrip("0") != m[3].lstrip("0"))


def _printed_elsewhere(
    text: str, normalized: Normalized, kind: Kind, evidence: Evidence, grounder: Grounder
) -> bool:
    here = {(evidence.page, line) for line in evidence.lines}
    forms = dict.fromkeys([text, *printed_forms(normalized.value, kind)])
    return any(grounder.places(form) - here for form in forms if form)
