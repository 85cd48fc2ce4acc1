"""Auto-accept is earned by corroboration, not by a score.

A value goes into the ERP without a person looking only when independent evidence agrees with it;
whatever a heuristic score says, a value without such evidence goes to review with the reason. What
counts, by kind:

- every value: printed exactly as read, as whole words (not inside "28.03.2009:51Uhr"), read by OCR
  surely (every word at 0.9 or more), and not a printed label ("Käufer", "Rechnungsdatum", "GmbH");
- amounts and percentages: a declared check that passed with its other values read from *other*
  lines (a VAT summary row is consistent with itself, so a check within one row proves nothing
  about which row is the total), or the same amount printed on another line too (the total and
  "Cash"/"zu zahlen"); in a line item, whose row is given, a check within the row counts;
- dates: a four-digit year printed, and a label of the field beside or above it, or no other date on
  the document (so a due date in the payment terms never passes for the issue date unlabelled);
- IBANs and VAT ids: their check digits;
- text (names, numbers, addresses): a label of the field beside or above it; a company name at the
  top of a receipt has none, so it is checked by a person;
- currencies: the exact, whole-word print.

This is deliberately strict: a finance team loses far more to a wrong value accepted silently than
to a right one checked once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.lexicon import fold_phrase, is_label
from app.schema.kinds import Kind
from app.trust.checks import CheckResult
from app.trust.grounding import Evidence, Grounder
from app.trust.normalize import Normalized, printed_forms

SURE_OCR = 0.9
_EDGE = ".,:;()[]\"'*#"
_FOUR_DIGIT_YEAR = re.compile(r"(?<!\d)(1[89]|2\d)\d\d(?!\d)")
_CURRENCY_SIGNS = "€$£¥"
_NUMERIC_DATE = re.compile(
    r"(?<!\d)\d{1,2}[/.\-]\d{1,2}[/.\-](?:\d{4}|\d{2})(?!\d)|(?<!\d)\d{4}-\d{2}-\d{2}(?!\d)"
)


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
    *,
    labels: frozenset[str] = frozenset(),
    in_item: bool = False,
    shared: bool = False,
) -> Verdict:
    """Whether the value of one field is corroborated (see the module docstring). ``labels``: the
    folded phrases that may label the field (:func:`app.lexicon.label_phrases`). ``in_item``: the
    field belongs to a row of a list (a line item), where the row is given and a check within the
    row (quantity x price = amount) is independent evidence of the readings. ``shared``: another
    field of the document has the same value (a tax equal to the total), so the number being
    printed twice says nothing about which field it is."""
    text = str(raw).strip()
    if evidence is None or normalized.status != "ok":
        return Verdict((), "uncorroborated")  # ungrounded / unparsed: reported as such too
    doubt = _doubt(text, normalized, evidence, kind)
    if doubt is not None:
        return Verdict((), doubt)
    support = ["exact"]
    labelled = in_item or _labelled(evidence, labels, grounder)
    if labelled and not in_item:
        support.append("labelled")
    if kind in ("amount", "percent"):
        confirmed = _independent_checks(evidence, checks, evidence_of, same_line=in_item)
        support += confirmed
        # Looked for only when no check confirms the value: a search per printed form.
        if (
            not confirmed
            and labelled
            and not shared
            and _printed_elsewhere(text, normalized, kind, evidence, grounder)
        ):
            support.append("printed_twice")
        doubt = (
            None if any(s.startswith("check:") or s == "printed_twice" for s in support) else "uncorroborated"
        )
    elif kind == "date":
        if _FOUR_DIGIT_YEAR.search(evidence.text) is None:
            return Verdict(tuple(support), "two_digit_year")
        support.append("four_digit_year")
        only = len(_printed_dates(grounder)) == 1
        support += ["only_date"] if only else []
        doubt = None if labelled or only else "unlabelled"
    elif kind in ("iban", "vat_id"):
        support.append("check_digits")
        doubt = None
    elif kind == "text":
        doubt = None if labelled else "unlabelled"
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
    """Whether a label of the field is printed left of the value on its line, or just above it on
    a line of its own (a label above with a value of its own beside it labels that value)."""
    if not labels:
        return False
    page = grounder.pages[evidence.page]
    x0, y0, _, y1 = evidence.bbox
    height = max(y1 - y0, 1e-3)
    left = [w.text for w in page.words if w.line in evidence.lines and w.bbox[2] <= x0 + height / 2]
    folded = f" {fold_phrase(' '.join(left))} "
    if any(f" {label} " in folded for label in labels):
        return True
    above: dict[int, list[str]] = {}
    for w in page.words:
        if w.line not in evidence.lines and y0 - 2.5 * height <= w.bbox[3] <= y0 + height / 4:
            above.setdefault(w.line, []).append(w.text)
    return any(fold_phrase(" ".join(texts)) in labels for texts in above.values())


def _printed_dates(grounder: Grounder) -> set[str]:
    return {
        m.group()
        for page in grounder.pages.values()
        for w in page.words
        for m in _NUMERIC_DATE.finditer(w.text)
    }


def _printed_elsewhere(
    text: str, normalized: Normalized, kind: Kind, evidence: Evidence, grounder: Grounder
) -> bool:
    here = {(evidence.page, line) for line in evidence.lines}
    forms = dict.fromkeys([text, *printed_forms(normalized.value, kind)])
    return any(grounder.places(form) - here for form in forms if form)
