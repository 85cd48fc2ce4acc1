"""An OCR worker dies with the process that started it, even when that process is SIGKILLed.

A worker that outlived a killed server would keep its ~800 MB, and a restart would start another
beside it. The test runs a real "server" process that starts an OCR worker, kills it with SIGKILL
(no cleanup can run) and watches every process it had started disappear.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from app.ocr.engine import OcrEngine, OcrLine
from app.ocr.pool import OcrPool
from app.pages import Page

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

ROOT = Path(__file__).resolve().parents[2]

# The "server": builds a pool on a fake engine, OCRs one page (which starts the worker), reports the
# worker's pid, then waits to be killed.
SERVER = """
import asyncio, sys, time
from PIL import Image
from app.pages import Page
from app.ocr.pool import OcrPool
from tests.integration.test_ocr_worker_lifetime import PidEngine

async def main() -> None:
    pool = OcrPool(PidEngine(), executor="process")
    page = Page(number=1, width=8, height=8, kind="image", dpi=None, image=Image.new("RGB", (8, 8)))
    (line,) = await pool.lines(page)
    print(line.text, flush=True)
    time.sleep(600)

asyncio.run(main())
"""


class PidEngine(OcrEngine):
    """Reads nothing: answers with the pid of the process it runs in, so the test learns it."""

    name = "pid"

    def recognize(self, image: Image.Image) -> list[OcrLine]:
        return [OcrLine(text=str(os.getpid()), bbox=(0.0, 0.0, 1.0, 1.0), confidence=1.0)]


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting for its (new) parent to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.add(int(entry.name))
    return found


def test_ocr_worker_and_helpers_die_with_a_killed_server() -> None:
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    started: set[int] = set()
    try:
        assert server.stdout is not None
        reported = server.stdout.readline().strip()
        assert reported.isdigit(), server.communicate(timeout=30)
        worker = int(reported)
        started = _children(server.pid)  # the worker and multiprocessing's resource tracker
        assert worker in started

        server.send_signal(signal.SIGKILL)
        server.wait(timeout=30)

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(_alive(pid) for pid in started):
            time.sleep(0.05)
        assert [pid for pid in started if _alive(pid)] == []
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        for pid in started:  # leave no orphan behind when the test fails
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_worker_outlives_the_thread_that_started_it() -> None:
    """The kernel's parent-death signal follows the spawning *thread*: a pool first used from a
    short-lived thread must not lose its worker when that thread ends."""
    page = Page(number=1, width=8, height=8, kind="image", dpi=None, image=Image.new("RGB", (8, 8)))
    pool = OcrPool(PidEngine(), executor="process")
    try:
        first: list[OcrLine] = []
        thread = threading.Thread(target=lambda: first.extend(asyncio.run(pool.lines(page))))
        thread.start()
        thread.join()
        (worker,) = first
        assert asyncio.run(pool.lines(page)) == [worker]  # the same worker, still alive
    finally:
        pool.close()
