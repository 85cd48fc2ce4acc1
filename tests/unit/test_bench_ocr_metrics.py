"""The OCR engine benchmark's metrics (bench/bench_ocr_engines.py), on hand-made text: no OCR runs.

Spaces are significant on purpose (a glued "SAMSAM" is wrong for extraction), digits must be exact,
and value recall on SROIE is space- and punctuation-sensitive."""

from __future__ import annotations

import pytest

from app.ocr.engine import OcrLine, lines_to_words
from bench.bench_ocr_engines import (
    accent_hits,
    char_errors,
    digit_misses,
    numeric_confidences,
    page_text,
    value_found,
    visual_rows,
    word_errors,
)


def test_a_glued_word_is_two_word_errors_and_one_character_error() -> None:
    assert word_errors("SAM SAM", "SAMSAM") == (2, 2)
    assert char_errors("SAM SAM", "SAMSAM") == (1, 7)
    assert word_errors("SAM SAM", "SAM SAM") == (0, 2)
    assert word_errors("TOTAL 14.10", "TOTAL  14.10") == (0, 2)  # runs of whitespace are one separator


def test_page_text_collapses_whitespace_within_lines_and_keeps_line_breaks() -> None:
    assert page_text(["  Total   5,47 ", "", "Danke"]) == "Total 5,47\nDanke"
    assert char_errors("a\nb", "a b") == (1, 3)


@pytest.mark.parametrize(
    ("ocr", "missed"),
    [
        (["Total", "5,47"], 0),
        (["Total:", "5,47."], 0),  # punctuation at the token's edges is not part of the number
        (["Total", "5.417"], 1),
        (["Total", "5.47"], 1),  # the separator is part of the number
        (["Total", "5,", "47"], 1),  # so is the absence of a space
        (["Total", "15,47"], 1),  # a longer number does not contain it
        (["Total5,47"], 1),
    ],
)
def test_a_number_counts_only_when_reproduced_exactly(ocr: list[str], missed: int) -> None:
    assert digit_misses("Total 5,47", ocr) == (missed, 1)


def test_repeated_numbers_must_all_be_read() -> None:
    assert digit_misses("12,00 EUR 12,00", ["12,00", "EUR"]) == (1, 2)
    assert digit_misses("no numbers here", ["no"]) == (0, 0)


def test_accent_recall_needs_the_exact_letters() -> None:
    known = "Müller GmbH, Hauptstraße 12 (Käufer)"
    assert accent_hits(known, ["Muller", "GmbH", "Hauptstraße", "12", "Käufer:"]) == (2, 3)
    assert accent_hits("Invoice 12", ["Invoice"]) == (0, 0)


def test_numeric_confidences_split_right_from_wrong_readings() -> None:
    lines = [
        OcrLine("Total 5,47", (0.1, 0.1, 0.5, 0.12), 0.9),
        OcrLine("5.417", (0.1, 0.2, 0.5, 0.22), 0.6),
        OcrLine("5,47", (0.1, 0.3, 0.5, 0.32), 0.8),
    ]
    right, wrong = numeric_confidences("Total 5,47", lines_to_words(lines))
    assert right == [0.9]  # the second "5,47" is one more than the page has
    assert wrong == [0.6, 0.8]


def test_value_recall_is_space_and_punctuation_sensitive_unless_asked() -> None:
    rows = ["SAMSAM TRADING CO", "67,JLN MEWAH 25/63", "40400 SHAH ALAM"]
    assert not value_found("SAM SAM TRADING CO", rows, spaces=True)
    assert value_found("SAM SAM TRADING CO", rows, spaces=False)
    assert not value_found("40400 SHAH ALAM.", rows, spaces=True)
    assert not value_found("40400 SHAH ALAM.", rows, spaces=False)
    # a multi-line value is found when the rows are joined by a space
    assert value_found("67,JLN MEWAH 25/63 40400 SHAH ALAM", rows, spaces=True)
    assert value_found("67,jln Mewah 25/63", rows, spaces=True)  # case is not what OCR is judged on


def test_visual_rows_join_a_row_left_to_right_whatever_the_engine_order() -> None:
    lines = [
        OcrLine("5,47", (0.7, 0.101, 0.9, 0.121), 0.9),
        OcrLine("Danke", (0.1, 0.2, 0.3, 0.22), 0.9),
        OcrLine("Total", (0.1, 0.1, 0.3, 0.12), 0.9),
    ]
    assert visual_rows(lines) == ["Total 5,47", "Danke"]
