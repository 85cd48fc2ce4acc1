"""From a registered schema to what the layout engine looks for: one ``FieldSpec`` per leaf (and one
``TableSpec`` per array of objects), each with the labels that may name it on a page.

Labels come from the property's name, its ``x-aliases`` (multilingual synonyms declared in the
schema) and the label lexicon of the concept the property is matched to. Matching uses the name
(words weighted by how specific they are to a concept), the description, the kind of value
(``kind_for``: a date property never matches an amount concept) and, when the packaged embedding
model is installed, the semantic similarity of the property's text to the concept's.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from app.engines.layout.embedding import MiniLM
from app.lexicon import CONCEPTS, Concept, name_words
from app.lexicon import fold_phrase as fold
from app.schema.kinds import Kind, kind_for
from app.schema.labels import label_aliases
from app.schema.tree import SchemaTree, declared_types

MIN_CONCEPT_SCORE = 0.3
_WORDS = re.compile(r"[a-z0-9]+")
_IDENTIFIER_WORDS = frozenset({"number", "no", "nr", "num", "id", "code", "ref", "reference"})
# Which kinds of value each concept can be; a property of another kind (other than text) is not
# matched to it.
_CONCEPT_KINDS: dict[str, frozenset[str]] = {
    "issue_date": frozenset({"date"}),
    "due_date": frozenset({"date"}),
    "delivery_date": frozenset({"date"}),
    "total": frozenset({"amount"}),
    "subtotal": frozenset({"amount"}),
    "tax_total": frozenset({"amount"}),
    "currency": frozenset({"currency", "text"}),
    "vat_id": frozenset({"vat_id", "text"}),
    "iban": frozenset({"iban", "text"}),
    "phone": frozenset({"phone", "text"}),
    "item_quantity": frozenset({"amount"}),
    "item_unit_price": frozenset({"amount"}),
    "item_amount": frozenset({"amount"}),
    "item_tax_rate": frozenset({"percent", "amount"}),
}


@dataclass
class FieldSpec:
    path: tuple[str, ...]
    """Keys from the object the field belongs to (the root, or a table's item)."""
    name: str
    kind: Kind
    types: frozenset[str]
    enum: tuple[Any, ...] | None
    labels: tuple[str, ...]
    """Folded label phrases, longest first."""
    concept: Concept | None
    identifier: bool
    """A text field that holds a code or number (invoice number, reference): one token, with digits."""

    @property
    def role(self) -> str:
        return self.concept.role if self.concept else "value"

    @property
    def numeric(self) -> bool:
        return bool(self.types & {"number", "integer"})


@dataclass
class TableSpec:
    path: tuple[str, ...]
    columns: list[FieldSpec]


@dataclass
class SchemaPlan:
    fields: list[FieldSpec] = field(default_factory=list)
    tables: list[TableSpec] = field(default_factory=list)


class ConceptMatcher:
    """Scores concepts for a property. Embeddings of the concepts are computed once per process."""

    def __init__(self, model: MiniLM | None) -> None:
        self.model = model
        self._concept_vectors: Any = None
        self._vectors_of: dict[str, Any] = {}
        self.collecting: list[str] | None = None
        """While set, ``best`` only records the texts it will need (encoded later in one batch)."""
        self.planning = threading.Lock()
        """Held by :func:`plan`: ``collecting`` is shared state, and a second plan running while the
        first collects would get no concept for any property (engines plan in worker threads)."""
        self._weight: dict[str, dict[str, float]] = {}
        for scope in ("document", "item"):
            counts = Counter(k for c in CONCEPTS if c.scope == scope for k in c.keywords)
            self._weight[scope] = {word: 1.0 / n for word, n in counts.items()}

    def _vectors(self) -> Any:
        if self._concept_vectors is None and self.model is not None:
            self._concept_vectors = self.model.encode([c.description for c in CONCEPTS])
        return self._concept_vectors

    def best(
        self, words: list[str], context: list[str], description: str, kind: Kind, scope: str
    ) -> Concept | None:
        """The concept this property (named by ``words``, inside objects named by ``context``)
        most likely is, or None when nothing fits well enough."""
        described = set(_WORDS.findall(fold(description)))
        vectors = self._vectors()
        similarity: list[float] = [0.0] * len(CONCEPTS)
        if vectors is not None and self.model is not None:
            text = " ".join(context + words) + (": " + description if description else "")
            if self.collecting is not None:
                self.collecting.append(text)
                return None
            if text not in self._vectors_of:
                self._vectors_of[text] = self.model.encode([text])[0]
            similarity = [float(v) for v in vectors @ self._vectors_of[text]]
        phrase = " ".join(words)
        weight = self._weight[scope]
        scored: list[tuple[float, int]] = []
        for index, concept in enumerate(CONCEPTS):
            if concept.scope != scope:
                continue
            allowed = _CONCEPT_KINDS.get(concept.key, frozenset({"text"}))
            if kind not in allowed:
                continue
            total = sum(weight.get(w, 1.0) for w in words) or 1.0
            named = sum(weight[w] for w in words if w in concept.keywords) / total
            exact = 1.0 if phrase in concept.labels else 0.0
            told = len(described & concept.keywords) / len(concept.keywords)
            score = 0.4 * named + 0.1 * exact + 0.15 * told
            score += 0.4 * similarity[index] if vectors is not None else 0.25 * told
            scored.append((score, -index))
        if not scored:
            return None
        score, index = max(scored)
        return CONCEPTS[-index] if score >= MIN_CONCEPT_SCORE else None


@lru_cache(maxsize=1)
def default_matcher() -> ConceptMatcher:
    return ConceptMatcher(MiniLM.bundled())


def plan(schema: dict[str, Any], matcher: ConceptMatcher, tree: SchemaTree | None = None) -> SchemaPlan:
    """The fields and tables of ``schema`` (local ``$ref``s followed; nested objects flattened into
    paths; arrays of scalars are left null: nothing on a page says where one starts). ``tree``:
    the schema's resolver when the caller has one."""
    tree = tree or SchemaTree(schema)
    with matcher.planning:
        if matcher.model is not None:  # one batch for every property's text: far cheaper than one each
            matcher.collecting = []
            _walk(schema, tree, (), (), SchemaPlan(), matcher, "document")
            texts, matcher.collecting = (
                [t for t in dict.fromkeys(matcher.collecting) if t not in matcher._vectors_of],
                None,
            )
            matcher._vectors_of.update(zip(texts, matcher.model.encode(texts), strict=True))
        result = SchemaPlan()
        _walk(schema, tree, (), (), result, matcher, "document")
    return result


def _walk(
    node: Any,
    tree: SchemaTree,
    path: tuple[str, ...],
    context: tuple[str, ...],
    result: SchemaPlan,
    matcher: ConceptMatcher,
    scope: str,
    columns: list[FieldSpec] | None = None,
) -> None:
    for name, declared in tree.properties(node).items():
        sub = tree.resolve(declared)
        if not isinstance(sub, dict):
            continue
        types = declared_types(sub)
        if "properties" in sub or "object" in types:
            _walk(sub, tree, (*path, name), (*context, name), result, matcher, scope, columns)
            continue
        items = tree.resolve(sub.get("items"))
        if "array" in types or "items" in sub:
            if scope == "document" and isinstance(items, dict) and "properties" in items:
                table = TableSpec((*path, name), [])
                _walk(items, tree, (), (), result, matcher, "item", table.columns)
                if table.columns:
                    result.tables.append(table)
            continue
        spec = _field(name, sub, (*path, name), context, matcher, scope)
        (columns if columns is not None else result.fields).append(spec)


def _field(
    name: str,
    schema: dict[str, Any],
    path: tuple[str, ...],
    context: tuple[str, ...],
    matcher: ConceptMatcher,
    scope: str,
) -> FieldSpec:
    kind = kind_for(name, schema)
    description = str(schema.get("description") or schema.get("title") or "")
    context_words = [w for part in context for w in name_words(part)]
    concept = matcher.best(name_words(name), context_words, description, kind, scope)
    if concept is not None and concept.party is not None and context:
        # "seller.address" vs "buyer.address": the parent's words decide the party.
        party = _party(context[-1])
        if party and party != concept.party:
            twin = next(
                (c for c in CONCEPTS if c.role == concept.role and c.party == party and c.scope == scope),
                None,
            )
            concept = twin or concept
    labels = [" ".join(name_words(name)), *label_aliases(schema)]
    if concept is not None:
        labels += concept.labels
    folded = sorted({f for f in (fold(label) for label in labels) if f}, key=lambda s: (-len(s), s))
    enum = schema.get("enum")
    return FieldSpec(
        path=path,
        name=name,
        kind=kind,
        types=declared_types(schema) or frozenset({"string"}),
        enum=tuple(enum) if isinstance(enum, list) else None,
        labels=tuple(folded),
        concept=concept,
        identifier=kind == "text"
        and (
            bool(set(name_words(name)) & _IDENTIFIER_WORDS)
            or (concept is not None and concept.key in ("invoice_number", "order_number", "item_number"))
        ),
    )


def _party(name: str) -> str | None:
    words = set(name_words(name))
    if words & {"seller", "supplier", "vendor", "merchant", "issuer", "company", "from"}:
        return "seller"
    if words & {"buyer", "customer", "client", "recipient", "bill", "billing", "ship"}:
        return "buyer"
    return None
