"""Words from the recogniser's character columns (split_words), detections of one phrase joined
(join_row_fragments), and lines_to_words keeping the recogniser's words: pure, no model."""

from __future__ import annotations

import itertools
import math

import pytest

from app.ocr.engine import PHRASE_GAP, OcrLine, OcrWord, join_row_fragments, lines_to_words
from app.ocr.ppocr import GAP_FACTOR, MIN_GAP_COLUMNS, split_words
from app.pages import BBox

LINE: BBox = (0.1, 0.2, 0.5, 0.25)


def _columns_with_gap(first: int, second: int, pitch: int, gap: int) -> list[int | None]:
    """Columns of ``first`` then ``second`` characters at ``pitch``, ``gap`` columns apart."""
    left = [i * pitch for i in range(first)]
    right = [left[-1] + gap + i * pitch for i in range(second)]
    return [*left, *right]


def _texts(words: list[OcrWord]) -> list[str]:
    return [w.text for w in words]


# ---------------------------------------------------------------------------------------------------
# split_words
# ---------------------------------------------------------------------------------------------------


def test_a_space_from_the_model_ends_a_word_however_close_the_columns() -> None:
    words = split_words("AB CD", [0.9] * 5, [2, 4, None, 6, 8], 40, LINE)
    assert _texts(words) == ["AB", "CD"]
    assert _texts(split_words("A B", [0.9] * 3, [2, None, 3], 40, LINE)) == ["A", "B"]


def test_characters_far_apart_become_two_words_without_a_space() -> None:
    columns = _columns_with_gap(3, 3, pitch=3, gap=24)  # 0 3 6 | 30 33 36
    words = split_words("SAMSAM", [0.9] * 6, columns, 60, LINE)
    assert _texts(words) == ["SAM", "SAM"]


def test_the_split_is_at_gap_factor_times_the_median_pitch() -> None:
    pitch = 10  # wide enough that MIN_GAP_COLUMNS does not decide
    below = math.ceil(GAP_FACTOR * pitch) - 1
    above = math.floor(GAP_FACTOR * pitch) + 1
    assert below > MIN_GAP_COLUMNS
    glued = split_words("ABCDEF", [0.9] * 6, _columns_with_gap(3, 3, pitch, below), 100, LINE)
    apart = split_words("ABCDEF", [0.9] * 6, _columns_with_gap(3, 3, pitch, above), 100, LINE)
    assert _texts(glued) == ["ABCDEF"]
    assert _texts(apart) == ["ABC", "DEF"]


def test_tight_pitches_of_narrow_characters_never_split() -> None:
    # Pitch 1: GAP_FACTOR x pitch is under 2 columns, but a split needs more than MIN_GAP_COLUMNS.
    for gap in range(2, MIN_GAP_COLUMNS + 1):
        columns = _columns_with_gap(3, 3, pitch=1, gap=gap)
        assert _texts(split_words("iiilll", [0.9] * 6, columns, 20, LINE)) == ["iiilll"], gap
    columns = _columns_with_gap(3, 3, pitch=1, gap=MIN_GAP_COLUMNS + 1)
    assert _texts(split_words("iiilll", [0.9] * 6, columns, 20, LINE)) == ["iii", "lll"]


def test_a_word_is_as_sure_as_its_least_sure_character() -> None:
    confs = [0.99, 0.42, 0.95, 0.5, 0.97, 0.98, 0.96]  # the space's own score counts for nothing
    words = split_words("SAM SAM", confs, [0, 3, 6, None, 12, 15, 18], 30, LINE)
    assert [(w.text, w.confidence) for w in words] == [("SAM", 0.42), ("SAM", 0.96)]
    glued = split_words("SAMSAM", [0.9, 0.8, 0.99, 0.3, 0.9, 0.9], [0, 3, 6, 30, 33, 36], 60, LINE)
    assert [w.confidence for w in glued] == [0.8, 0.3]
    assert [w.confidence for w in split_words("A", [1.7], [3], 10, LINE)] == [1.0]  # clamped to 0..1


def test_word_boxes_run_left_to_right_inside_the_line_without_overlapping() -> None:
    text = "Total due EUR 1207.08"
    columns: list[int | None] = []
    col = 0
    for ch in text:
        col += 5 if ch == " " else 3
        columns.append(None if ch == " " else col)
    line_columns = col + 3
    words = split_words(text, [0.9] * len(text), columns, line_columns, LINE)
    assert _texts(words) == ["Total", "due", "EUR", "1207.08"]
    x0, y0, x1, y1 = LINE
    for word in words:
        assert x0 <= word.bbox[0] < word.bbox[2] <= x1
        assert (word.bbox[1], word.bbox[3]) == (y0, y1)
    for left, right in itertools.pairwise(words):
        assert left.bbox[2] <= right.bbox[0]
    # Each word covers where its characters' columns are on the line.
    scale = (x1 - x0) / line_columns
    chars = iter([c for c in columns if c is not None])
    for word in words:
        for _ in word.text:
            centre = x0 + (next(chars) + 0.5) * scale
            assert word.bbox[0] <= centre <= word.bbox[2]


def test_a_word_at_the_line_edge_stays_inside_the_line() -> None:
    words = split_words("AB", [0.9, 0.9], [0, 9], 10, LINE)  # half a pitch either side spills over
    assert words[0].bbox == pytest.approx(LINE)


def test_without_columns_each_token_gets_the_line_box() -> None:
    text = "Total due 12,50"
    no_columns = split_words(text, [0.9] * len(text), [None] * len(text), 40, LINE)
    assert _texts(no_columns) == ["Total", "due", "12,50"]
    assert all(w.bbox == LINE for w in no_columns)
    columns = [None if ch == " " else i for i, ch in enumerate(text)]
    no_span = split_words(text, [0.9] * len(text), columns, 0, LINE)  # no width to place them in
    assert _texts(no_span) == ["Total", "due", "12,50"]
    assert all(w.bbox == LINE for w in no_span)


# ---------------------------------------------------------------------------------------------------
# join_row_fragments
# ---------------------------------------------------------------------------------------------------

HEIGHT = 0.02


def _fragment(text: str, x0: float, width: float, y0: float = 0.3, *, words: bool = True) -> OcrLine:
    box = (x0, y0, x0 + width, y0 + HEIGHT)
    own = (OcrWord(text, box, 0.9),) if words else ()
    return OcrLine(text, box, 0.9, own)


def test_close_fragments_of_a_row_are_one_line_with_both_words_in_order() -> None:
    sam = _fragment("SAM", 0.1, 0.05)
    trading = OcrLine(
        "SAM TRADING",
        (0.16, 0.301, 0.3, 0.319),
        0.8,
        (OcrWord("SAM", (0.16, 0.301, 0.2, 0.319), 0.85), OcrWord("TRADING", (0.21, 0.301, 0.3, 0.319), 0.8)),
    )
    assert (trading.bbox[0] - sam.bbox[2]) < PHRASE_GAP * HEIGHT  # aspect 1: a gap of half a height
    for given in ([sam, trading], [trading, sam]):
        (joined,) = join_row_fragments(given, aspect=1.0)
        assert joined.text == "SAM SAM TRADING"
        assert joined.words == sam.words + trading.words
        assert joined.bbox == (0.1, 0.3, 0.3, 0.32)
        assert joined.confidence == 0.8


def test_fragments_further_apart_than_the_phrase_gap_stay_apart() -> None:
    label = _fragment("Total", 0.1, 0.05)
    amount = _fragment("12.50", 0.15 + 1.5 * PHRASE_GAP * HEIGHT, 0.05)
    assert [ln.text for ln in join_row_fragments([amount, label], aspect=1.0)] == ["Total", "12.50"]


def test_fragments_of_different_rows_never_join() -> None:
    upper = _fragment("Müller", 0.1, 0.05, y0=0.3)
    lower = _fragment("GmbH", 0.15, 0.05, y0=0.3 + 2 * HEIGHT)  # starts where the upper one ends
    assert [ln.text for ln in join_row_fragments([lower, upper], aspect=1.0)] == ["Müller", "GmbH"]


def test_lines_without_recogniser_words_never_join() -> None:
    close = 0.15 + 0.2 * PHRASE_GAP * HEIGHT
    for first, second in [(False, True), (True, False), (False, False)]:
        lines = [_fragment("SAM", 0.1, 0.05, words=first), _fragment("SAM", close, 0.05, words=second)]
        assert len(join_row_fragments(lines, aspect=1.0)) == 2


def test_the_gap_is_measured_in_line_heights_through_the_aspect() -> None:
    """Boxes are normalised per axis: on a wide image (aspect 2) a normalised x gap is twice as many
    pixels, compared with the line's height, as on a square one; on a narrow image (aspect 0.5)
    half as many. A gap of exactly PHRASE_GAP heights at aspect 1 is therefore a phrase on the
    narrow image and two columns on the wide one."""
    gap = PHRASE_GAP * HEIGHT
    lines = [_fragment("SAM", 0.1, 0.05), _fragment("SAM", 0.15 + gap, 0.05)]
    assert [ln.text for ln in join_row_fragments(lines, aspect=0.5)] == ["SAM SAM"]
    assert [ln.text for ln in join_row_fragments(lines, aspect=2.0)] == ["SAM", "SAM"]


# ---------------------------------------------------------------------------------------------------
# lines_to_words
# ---------------------------------------------------------------------------------------------------


def test_recogniser_words_keep_their_boxes_and_confidences() -> None:
    box = (0.1, 0.2, 0.6, 0.25)
    placed = (OcrWord("ab", (0.1, 0.2, 0.4, 0.25), 0.61), OcrWord("cdefgh", (0.45, 0.2, 0.6, 0.25), 0.99))
    with_words = OcrLine("ab cdefgh", box, 0.9, placed)
    estimated = OcrLine("ab cdefgh", box, 0.9)
    after = OcrLine("EUR", (0.1, 0.3, 0.2, 0.35), 0.7)

    words = lines_to_words([with_words, after], first_line_index=3)
    assert [(w.text, w.bbox, w.confidence, w.line, w.source) for w in words] == [
        ("ab", placed[0].bbox, 0.61, 3, "ocr"),
        ("cdefgh", placed[1].bbox, 0.99, 3, "ocr"),
        ("EUR", after.bbox, 0.7, 4, "ocr"),
    ]
    # The same line without the recogniser's words gets the proportional estimate instead.
    guess = lines_to_words([estimated])
    assert [w.text for w in guess] == ["ab", "cdefgh"]
    assert [w.confidence for w in guess] == [0.9, 0.9]
    assert guess[0].bbox != pytest.approx(placed[0].bbox)
    assert guess[0].bbox[2] == pytest.approx(0.1 + 0.5 * 2.5 / 9)


def test_a_multiplication_sign_is_a_word_of_its_own() -> None:
    """ "2 x 1,03" read glued as one token would hide the amount from grounding and extraction."""
    text = "2\u00d71,03"
    words = split_words(text, [0.9] * len(text), [2 * i for i in range(len(text))], 40, LINE)
    assert _texts(words) == ["2", "\u00d7", "1,03"]
    assert [w.bbox[0] for w in words] == sorted(w.bbox[0] for w in words)


def test_an_unsure_diacritic_is_dropped_and_a_sure_one_kept() -> None:
    """ "AÉON" with the É at 0.39 is a smudged "AEON"; "Straße" and "Müller" read surely stay."""
    unsure = split_words("AÉON", [0.99, 0.39, 0.98, 0.99], [2, 4, 6, 8], 40, LINE)
    assert _texts(unsure) == ["AEON"]
    assert unsure[0].confidence == pytest.approx(0.39)  # still as unsure as it was read
    sure = split_words(
        "Müller Straße", [0.99, 0.93] + [0.99] * 11, [*range(2, 14, 2), None, *range(16, 28, 2)], 40, LINE
    )
    assert _texts(sure) == ["Müller", "Straße"]
    assert _texts(split_words("ß", [0.2], [2], 40, LINE)) == ["ß"]  # no plain form: kept
