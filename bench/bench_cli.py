"""How long the ``docextract`` command takes to answer ``--help``, against a bare interpreter.

    python bench/bench_cli.py [--runs 15]

Runs ``python -m app --help``, ``python -m app extract --help`` and ``python -c pass`` (the
interpreter's own start, the baseline) --runs times each, interleaved, each in a fresh process, and
prints the median wall time in ms and its ratio to the baseline. Goal: ``--help`` under 500 ms.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS: dict[str, list[str]] = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "python -m app --help": [sys.executable, "-m", "app", "--help"],
    "python -m app extract --help": [sys.executable, "-m", "app", "extract", "--help"],
}


def wall_ms(command: list[str]) -> float:
    """One run in a fresh process; its output is discarded, a failure stops the benchmark."""
    started = time.perf_counter()
    subprocess.run(  # noqa: S603 - our own interpreter and module
        command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for command in COMMANDS.values():  # one warm-up each: the first run reads files from disk
        wall_ms(command)
    for _ in range(args.runs):  # interleaved, so a busy moment hurts all three alike
        for name, command in COMMANDS.items():
            times[name].append(wall_ms(command))
    baseline = statistics.median(times["python -c pass"])
    print(f"{'command':<32}{'median ms':>10}{'x baseline':>12}")
    for name, measured in times.items():
        median = statistics.median(measured)
        print(f"{name:<32}{median:>10.0f}{median / baseline:>12.1f}")


if __name__ == "__main__":
    main()
