"""One thread per process for all PyMuPDF work: MuPDF is not thread-safe, and a single thread keeps
documents interleaved page by page without blocking the event loop. Scale out with processes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

T = TypeVar("T")
_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pymupdf")


async def run_in_pdf_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(_executor, partial(fn, *args, **kwargs))
