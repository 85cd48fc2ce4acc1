"""Leave-one-set-out: calibration fitted on the other families is what an unseen family gets, and
the report shows when it does not transfer."""

from __future__ import annotations

from pathlib import Path

import orjson
from click.testing import CliRunner

from app.cli import main
from app.trust.evaluate import FieldOutcome, flagged_pointers, leave_one_set_out


def outcomes(n: int, score: float, right_every: int) -> list[FieldOutcome]:
    return [
        FieldOutcome(f"d{i}", "/total", 1, 1, i % right_every == 0, score, score, True, False)
        for i in range(n)
    ]


def test_calibration_from_other_families_is_applied_to_the_held_out_one() -> None:
    sets = {"sure": outcomes(40, 0.9, 1), "shaky": outcomes(40, 0.9, 2)}
    results = leave_one_set_out(sets, threshold=0.7)
    # "shaky" held out: calibrated on "sure" (0.9 -> 1.0), so all of it is accepted and half is wrong.
    assert results["shaky"]["auto_accepted_share"] == 1.0
    assert results["shaky"]["auto_accepted_error_rate"] == 0.5
    assert results["shaky"]["ece"] == 0.5 and results["shaky"]["calibrated_on"] == 40
    # "sure" held out: calibrated on "shaky" (0.9 -> 0.5): nothing passes the 0.7 threshold.
    assert results["sure"]["auto_accepted_share"] == 0.0
    assert results["sure"]["ece"] == 0.5


def test_the_command_reads_eval_reports_and_needs_two(tmp_path: Path) -> None:
    paths = []
    for name, right_every in (("sroie", 1), ("forms", 2)):
        path = tmp_path / f"{name}.json"
        fields = [o.__dict__ for o in outcomes(30, 0.9, right_every)]
        path.write_bytes(orjson.dumps({"fields": fields}))
        paths.append(str(path))
    result = CliRunner().invoke(main, ["loso", *paths])
    assert result.exit_code == 0, result.output
    assert "| forms | 30 | 0.5 | 1.0 | 0.5 |" in result.output
    alone = CliRunner().invoke(main, ["loso", paths[0]])
    assert alone.exit_code != 0 and "at least two" in alone.output


def test_what_a_person_is_asked_to_look_at() -> None:
    """A reason names its field, a failed check names its fields, and a reason about the whole
    document leaves nothing auto-accepted."""
    checks = [{"rule": "sum_ok", "pointers": ["/subtotal", "/total"]}]
    named = {"review": {"reasons": ["unlabelled:/seller", "check_failed:sum_ok"]}, "checks": checks}
    assert flagged_pointers(named) == {"/seller", "/subtotal", "/total"}
    whole = {"review": {"reasons": ["unlabelled:/seller", "unfamiliar_document:language"]}, "checks": []}
    assert flagged_pointers(whole) is None
    assert flagged_pointers({"review": {"reasons": []}}) == set()
