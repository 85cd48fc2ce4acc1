"""The extraction result as clients get it (DESIGN.md §3), typed so the OpenAPI spec describes every
field and an integrator can generate a client from it.

The extractor builds the result as plain JSON values; ``ExtractionResult.of`` converts it at the
API's edge. Field order is the order on the wire.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

ResultStatus = Literal["succeeded", "needs_review"]
ReviewStatus = Literal["not_required", "pending", "approved", "rejected"]
Decision = Literal["approve", "reject"]
FieldSource = Literal["engine", "reviewer", "e-invoice"]
ComponentSource = Literal["engine", "sender_memory"]
CheckStatus = Literal["passed", "failed", "skipped"]
NormalizedStatus = Literal["ok", "unparsed", "absent"]
FinishReason = Literal["stop", "length"]


class Reported(msgspec.Struct, forbid_unknown_fields=True):
    """Converted from the JSON the service built: a key the model does not declare is an error
    (found by the tests), never a field silently missing from the API and its spec."""


class SchemaUsed(Reported):
    """The exact schema version the document was read against."""

    name: str
    version: int
    sha256: str


class ModelUsed(Reported):
    engine: Annotated[str, msgspec.Meta(description="`sglang`, `transformers`, `layout`, ...")]
    name: Annotated[str, msgspec.Meta(description="The model the engine ran.")]


class Evidence(Reported):
    """Where a value is printed."""

    page: Annotated[int, msgspec.Meta(description="1-based.")]
    bbox: Annotated[list[float], msgspec.Meta(description="x0, y0, x1, y1, normalised to the page (0-1).")]
    text: Annotated[str, msgspec.Meta(description="The printed text that matched.")]
    score: float
    method: Annotated[str, msgspec.Meta(description="`exact`, `normalized` or `fuzzy`.")]


class TokenProbability(Reported):
    """Probabilities of the tokens the model chose freely for the value."""

    min: float
    mean: float
    tokens: int


class ConfidenceComponents(Reported):
    token_prob: TokenProbability | None
    grounded: Annotated[float, msgspec.Meta(description="How well the value was found on the page.")]
    normalized: Annotated[float, msgspec.Meta(description="Lower when the value could not be parsed.")]
    checks: Annotated[float, msgspec.Meta(description="Lower when a check on the field failed.")]
    ocr: Annotated[float, msgspec.Meta(description="The OCR confidence of the matched words.")]
    score: Annotated[float, msgspec.Meta(description="The combined score (before calibration).")]
    corroborated: Annotated[
        bool,
        msgspec.Meta(
            description="Independent evidence agrees (`corroborated_by`): the score keeps 30 % of its doubt."
        ),
    ] = False
    source: Annotated[
        ComponentSource,
        msgspec.Meta(
            description="`sender_memory` when the value was found where an approved document of the "
            "same sender printed it; `engine` otherwise."
        ),
    ] = "engine"


class Normalization(Reported):
    kind: Annotated[
        str,
        msgspec.Meta(
            description="`date`, `amount`, `currency`, `percent`, `iban`, `vat_id`, `phone`, `text`."
        ),
    ]
    status: Annotated[
        NormalizedStatus,
        msgspec.Meta(description="`absent` (null: not on the page), `ok`, or `unparsed` (kept as read)."),
    ]


class RivalReading(Reported):
    """Another value the engine read for the field and did not choose."""

    value: Annotated[Any, msgspec.Meta(description="As the engine read it.")]
    score: Annotated[float, msgspec.Meta(description="Its certainty, on the scale of `token_prob.min`.")]
    page: int


class EInvoiceEvidence(Reported):
    """Where an e-invoice's XML holds the value (`source: "e-invoice"`)."""

    business_term: Annotated[
        str, msgspec.Meta(description="EN 16931 business term, e.g. `BT-112`; `BG-5` for an address.")
    ]
    path: Annotated[str, msgspec.Meta(description="XPath of the element in the XML.")]
    text: Annotated[str, msgspec.Meta(description="The value as the XML writes it.")]
    page_value: Annotated[
        Any,
        msgspec.Meta(
            description="What the visible page prints for the field when it differs from the XML "
            "(review reason `einvoice_mismatch:<pointer>`); null when the page agrees or says nothing."
        ),
    ] = None


class FieldReport(Reported):
    """Everything about one leaf value of `data` that is not the value itself."""

    confidence: Annotated[float | None, msgspec.Meta(description="0-1; null when the value is absent.")]
    page: Annotated[int | None, msgspec.Meta(description="The page the value was read from.")]
    raw_text: Annotated[str | None, msgspec.Meta(description="The value as the model read it.")]
    normalized: Normalization
    evidence: list[Evidence]
    components: ConfidenceComponents
    checks: Annotated[list[str], msgspec.Meta(description="The checks that involve this field.")]
    corroborated_by: Annotated[
        list[str],
        msgspec.Meta(
            description="What independent evidence agrees with the value: `exact` (printed so, as whole "
            "words, read surely, not a label) and, by kind, `check:<rule>` (a check with values from "
            "other lines), `printed_twice`, `four_digit_year`, `check_digits`. Empty: the value is not "
            "corroborated and the result needs review (the reason names why)."
        ),
    ] = msgspec.field(default_factory=list)
    rivals: Annotated[
        list[RivalReading],
        msgspec.Meta(
            description="The runner-up readings, best first (up to 3; other values than this one). One "
            "nearly as certain as the chosen value (70 % or more) is the review reason `rival:<pointer>` "
            "unless a check settles it."
        ),
    ] = msgspec.field(default_factory=list)
    source: Annotated[
        FieldSource,
        msgspec.Meta(
            description="`e-invoice` when read from the invoice's structured XML (`einvoice`), "
            "`reviewer` when a person set the value (`review.revisions`)."
        ),
    ] = "engine"
    einvoice: Annotated[
        EInvoiceEvidence | None, msgspec.Meta(description="The XML the value was read from.")
    ] = None


class CheckReport(Reported):
    """One check declared by the schema (`x-checks`), or one item of a `for_each` check."""

    rule: str
    status: CheckStatus
    expected: str | None
    actual: str | None
    pointers: Annotated[list[str], msgspec.Meta(description="JSON Pointers of the fields involved.")]
    detail: str


class ValidationFinding(Reported):
    """A place where `data` breaks the registered schema."""

    pointer: str
    keyword: Annotated[str, msgspec.Meta(description="The JSON Schema keyword that failed.")]
    message: str


class Change(Reported):
    pointer: str
    old: Any
    new: Any
    confidence: Annotated[
        float | None, msgspec.Meta(description="The confidence the replaced value was given.")
    ] = None


class Revision(Reported):
    """One review: immutable once written."""

    number: Annotated[int, msgspec.Meta(description="1 for the first review.")]
    reviewer: Annotated[str, msgspec.Meta(description="The API key id that reviewed.")]
    reviewer_name: str
    created_at: str
    decision: Decision | None
    note: str | None
    changes: list[Change]


class Review(Reported):
    required: bool
    reasons: Annotated[
        list[str],
        msgspec.Meta(
            description="`kind:detail`, e.g. `low_confidence:/total`, `missing:/invoice_number`, "
            "`check_failed:line_items_sum`, `invalid:/date:format`, `page_truncated:2`."
        ),
    ]
    min_confidence: float
    status: Annotated[
        ReviewStatus,
        msgspec.Meta(
            description="`pending` (waits for a person), `not_required` (auto-accepted), `approved` "
            "or `rejected` (a person decided: `revisions`)."
        ),
    ] = "not_required"
    revision: Annotated[
        int, msgspec.Meta(description='How many reviews were saved; the ETag is `"r<revision>"`.')
    ] = 0
    revisions: list[Revision] = msgspec.field(default_factory=list)


class XsdViolation(Reported):
    line: int
    message: str


class EInvoiceReport(Reported):
    """The structured invoice found in the document (a Factur-X / ZUGFeRD / XRechnung PDF's XML, or
    an XML upload)."""

    syntax: Annotated[str | None, msgspec.Meta(description="`CII` or `UBL`; null when unreadable.")]
    profile: Annotated[
        str | None, msgspec.Meta(description="BT-24, e.g. `urn:cen.eu:en16931:2017` or an XRechnung URN.")
    ]
    attachment: Annotated[
        str | None, msgspec.Meta(description="The PDF attachment's name; null for an XML upload.")
    ]
    relationship: Annotated[
        str | None, msgspec.Meta(description="The attachment's declared `/AFRelationship`.")
    ]
    xsd: Annotated[str | None, msgspec.Meta(description="The XSD the XML was checked against.")]
    valid: Annotated[bool, msgspec.Meta(description="Readable and valid against that XSD.")]
    violations: Annotated[list[XsdViolation], msgspec.Meta(description="XSD errors (at most 50).")]
    error: Annotated[
        str | None,
        msgspec.Meta(
            description="Why the XML could not be read (`malformed`, `too_large`, `dtd_forbidden`, ...); "
            "the document was then read from its pages."
        ),
    ]


class PageReport(Reported):
    page: int
    model: str
    finish_reason: FinishReason
    prompt_tokens: int
    completion_tokens: int


class ExtractionResult(Reported):
    """What `POST /extract` returns and `GET /extractions/{id}` gives back."""

    id: Annotated[str, msgspec.Meta(description="`ext_...`")]
    status: ResultStatus
    schema: SchemaUsed
    model: ModelUsed
    data: Annotated[
        Any,
        msgspec.Meta(
            description="The document's values, shaped by the registered schema (null when no page "
            "could be read)."
        ),
    ]
    confidence: Annotated[float | None, msgspec.Meta(description="The weakest present field's confidence.")]
    confidence_calibrated: bool
    fields: Annotated[
        dict[str, FieldReport], msgspec.Meta(description="Per leaf of `data`, keyed by JSON Pointer.")
    ]
    checks: list[CheckReport]
    validation: Annotated[list[ValidationFinding], msgspec.Meta(description="Empty when `data` is valid.")]
    review: Review
    pages: list[PageReport]
    timings_ms: Annotated[dict[str, float], msgspec.Meta(description="Milliseconds per phase, and `total`.")]
    einvoice: Annotated[
        EInvoiceReport | None,
        msgspec.Meta(description="The e-invoice XML the values were read from; null for other documents."),
    ] = None

    @classmethod
    def of(cls, result: dict[str, Any]) -> ExtractionResult:
        """The result the extractor built, typed (the same JSON)."""
        return msgspec.convert(result, cls)

    @classmethod
    def decode(cls, stored: str | bytes) -> ExtractionResult:
        """A result stored as JSON (``ExtractionRecord.result``)."""
        return msgspec.json.decode(stored, type=cls)
