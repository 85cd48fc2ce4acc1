"""What a reviewer holding the ground truth changes (the benchmarks review with it)."""

from __future__ import annotations

from app.trust.evaluate import truth_corrections

SCHEMA = {
    "type": "object",
    "properties": {
        "total": {"type": ["number", "null"]},
        "date": {"type": ["string", "null"], "format": "date"},
        "seller": {"type": "object", "properties": {"name": {"type": ["string", "null"]}}},
        "line_items": {
            "type": "array",
            "items": {"type": "object", "properties": {"amount": {"type": ["number", "null"]}}},
        },
    },
}


def test_equal_values_are_left_and_different_ones_corrected() -> None:
    data = {"total": 12.5, "date": "2024-03-15", "seller": {"name": "ACME GMBH"}, "line_items": []}
    truth = {"total": "12,50", "date": "15.03.2024", "seller": {"name": "Acme GmbH"}, "line_items": []}
    assert truth_corrections(data, truth, SCHEMA) == []
    assert truth_corrections({**data, "total": 125.0}, truth, SCHEMA) == [("/total", "12,50")]


def test_lists_are_corrected_whole_and_missing_objects_as_objects() -> None:
    truth = {"seller": {"name": "Acme"}, "line_items": [{"amount": 1.0}, {"amount": 2.0}]}
    short = {"seller": None, "line_items": [{"amount": 1.0}]}
    assert truth_corrections(short, truth, SCHEMA) == [
        ("/seller", {"name": "Acme"}),
        ("/line_items", [{"amount": 1.0}, {"amount": 2.0}]),
    ]
    wrong_item = {"seller": {"name": "Acme"}, "line_items": [{"amount": 1.0}, {"amount": 3.0}]}
    assert truth_corrections(wrong_item, truth, SCHEMA) == [("/line_items", truth["line_items"])]


def test_values_the_truth_leaves_null_or_out_are_not_touched() -> None:
    assert truth_corrections({"total": 9.0, "date": "2024-01-01"}, {"total": None}, SCHEMA) == []
    assert truth_corrections(None, {"total": 5.0}, SCHEMA) == [("/total", 5.0)]
