"""OCR off the event loop.

OCR takes seconds per page and holds the CPU, so the service must never run it on the event loop.
:class:`OcrPool` runs an :class:`~app.ocr.engine.OcrEngine` in worker processes (default: isolates
onnxruntime's memory and threads from the server, and a crash kills a worker, not the service) or in
threads (cheaper to start; onnxruntime releases the GIL while it computes). Nothing is started until
the first page arrives, so importing this module or building a pool costs nothing.

A worker process dies with the process that started it, even one killed with SIGKILL (which runs no
cleanup): otherwise each restart of a crashed server would leave another ~800 MB worker behind. See
:func:`_die_with_parent`. multiprocessing's resource tracker then exits by itself: it stops when the
last process holding its pipe (the parent and its workers) is gone.
"""

from __future__ import annotations

import asyncio
import ctypes
import hashlib
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import OrderedDict
from concurrent.futures import BrokenExecutor, Executor, ProcessPoolExecutor, ThreadPoolExecutor
from types import TracebackType
from typing import Literal, Self

from PIL import Image

from app.ocr.engine import OcrEngine, OcrLine, available_cpus, lines_to_words, to_rgb
from app.ocr.ppocr import PpOcrEngine
from app.pages import Page, Word

ExecutorKind = Literal["process", "thread"]

_worker_engine: OcrEngine | None = None
"""The engine of this worker process: received once by :func:`_init_worker`, reused for every page,
so models load once per worker, on its first page."""


_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_PARENT_CHECK_S = 1.0


def _init_worker(engine: OcrEngine, parent_pid: int | None, parent_thread_is_main: bool) -> None:
    _die_with_parent(parent_pid, parent_thread_is_main)
    global _worker_engine  # noqa: PLW0603 - the per-process cache is the point
    _worker_engine = engine


def _die_with_parent(parent_pid: int | None, parent_thread_is_main: bool) -> None:
    """Make this worker exit when the process that started it dies, however it dies.

    On Linux the kernel sends SIGKILL at the parent's death (``PR_SET_PDEATHSIG``): immediate, even
    while a page is being read. That signal fires when the parent *thread* that spawned us ends, so
    it is armed only when that thread is the main one (the server, job worker and CLI run their
    event loop there). A watchdog thread covers the rest (other systems, other threads, a parent
    that died before the signal was armed): it wakes when multiprocessing's pipe from the parent
    closes or, every second, when our parent pid is no longer ``parent_pid`` (None: the parent is
    not our OS parent, as under forkserver, so only the pipe counts).
    """
    if parent_pid is not None and parent_thread_is_main and sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - a libc without prctl: watchdog only
            pass
    if parent_pid is not None and os.getppid() != parent_pid:  # died before anything was armed
        os._exit(1)
    threading.Thread(
        target=_watch_parent, args=(parent_pid,), name="ocr-parent-watchdog", daemon=True
    ).start()


def _watch_parent(parent_pid: int | None) -> None:
    parent = multiprocessing.parent_process()
    while True:
        if parent is not None:
            parent.join(timeout=_PARENT_CHECK_S)  # returns at once when the parent's pipe closes
            if not parent.is_alive():
                break
        else:  # pragma: no cover - multiprocessing always records the parent of a pool worker
            time.sleep(_PARENT_CHECK_S)
        if parent_pid is not None and os.getppid() != parent_pid:
            break
    os._exit(1)


def _recognize_in_worker(size: tuple[int, int], rgb: bytes) -> list[OcrLine]:
    """Rebuild the page image from raw RGB bytes (cheaper than PNG both ways) and OCR it."""
    if _worker_engine is None:
        raise RuntimeError("OCR worker was started without an engine")
    return _worker_engine.recognize(Image.frombytes("RGB", size, rgb))


class OcrPool:
    """Runs ``engine.recognize`` in ``max_workers`` worker processes or threads.

    The default ``max_workers=1`` is deliberate: onnxruntime already spreads one page over every
    core, so more workers only help on machines with many more cores than pages in flight. The
    default engine is a :class:`~app.ocr.ppocr.PpOcrEngine` whose thread count is the CPUs divided among the
    workers. In the process variant the engine is pickled to each worker once (so it must be
    picklable; the engines send their settings only), and processes are spawned rather than forked
    because forking a process that runs an event loop and native thread pools is unsafe.
    """

    def __init__(
        self,
        engine: OcrEngine | None = None,
        *,
        executor: ExecutorKind = "process",
        max_workers: int = 1,
        start_method: str = "spawn",
        cache_pages: int = 256,
    ) -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        if executor not in ("process", "thread"):
            raise ValueError(f"executor must be 'process' or 'thread', not {executor!r}")
        self.engine = engine or PpOcrEngine(threads=max(1, available_cpus() // max_workers))
        self.executor_kind: ExecutorKind = executor
        self.max_workers = max_workers
        self.start_method = start_method
        self._executor: Executor | None = None
        self._lock = threading.Lock()
        self._closed = False
        self.cache_pages = cache_pages
        self._cache: OrderedDict[bytes, list[OcrLine]] = OrderedDict()
        """Lines by page content (blake2b of the pixels and width), least recently used first;
        the lines of a page are a few kilobytes, so 256 pages cost about a megabyte."""

    def _ensure_executor(self) -> Executor:
        with self._lock:
            if self._closed:
                raise RuntimeError("OcrPool is closed")
            if self._executor is None:
                if self.executor_kind == "thread":
                    self._executor = ThreadPoolExecutor(self.max_workers, thread_name_prefix="ocr")
                else:
                    # Workers are spawned by the thread that submits pages: the event loop's, which is
                    # this one. Under forkserver they are children of the fork server, not ours.
                    direct_child = self.start_method in ("spawn", "fork")
                    self._executor = ProcessPoolExecutor(
                        self.max_workers,
                        mp_context=multiprocessing.get_context(self.start_method),
                        initializer=_init_worker,
                        initargs=(
                            self.engine,
                            os.getpid() if direct_child else None,
                            threading.current_thread() is threading.main_thread(),
                        ),
                    )
            return self._executor

    async def lines(self, page: Page) -> list[OcrLine]:
        """OCR lines of ``page.image`` in reading order, computed in the pool, or remembered: the
        same pixels (a document sent again, a retried job, a logo on every page) are read once."""
        image = to_rgb(page.image)
        pixels = image.tobytes()
        key = hashlib.blake2b(pixels, digest_size=16, person=image.size[0].to_bytes(8, "little")).digest()
        with self._lock:
            if self._closed:
                raise RuntimeError("OcrPool is closed")
            if key in self._cache:
                self._cache.move_to_end(key)
                return list(self._cache[key])
        executor = self._ensure_executor()
        loop = asyncio.get_running_loop()
        try:
            if self.executor_kind == "thread":
                lines = await loop.run_in_executor(executor, self.engine.recognize, image)
            else:
                lines = await loop.run_in_executor(executor, _recognize_in_worker, image.size, pixels)
        except BrokenExecutor:
            # A worker died (e.g. killed for memory): drop the pool so the next page gets a fresh one.
            self._discard(executor)
            raise
        with self._lock:
            self._cache[key] = lines
            while len(self._cache) > self.cache_pages:
                self._cache.popitem(last=False)
        return list(lines)

    async def words(self, page: Page) -> list[Word]:
        """OCR words of ``page`` (see :func:`~app.ocr.engine.lines_to_words`), computed in the pool."""
        return lines_to_words(await self.lines(page))

    def _discard(self, executor: Executor) -> None:
        with self._lock:
            if self._executor is executor:
                self._executor = None
        executor.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """Stop the workers, waiting for pages already running; pages not yet started are cancelled."""
        with self._lock:
            self._closed = True
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)

    async def aclose(self) -> None:
        """:meth:`close` without blocking the event loop while workers finish."""
        await asyncio.to_thread(self.close)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
