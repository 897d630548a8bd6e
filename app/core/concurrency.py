"""Where blocking work runs.

Anything that may wait on the network (pylti1p3's ``requests``, PostgreSQL) runs in the
thread pool so the event loop stays free. Read-only work on SQLite is the exception: in WAL
mode a reader never waits for a lock, and its queries cost microseconds, less than the
~150 µs of a hop to the thread pool and back, so it runs inline.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from fastapi.concurrency import run_in_threadpool

from app.core.state import AppContext

T = TypeVar("T")


async def run_read(ctx: AppContext, func: Callable[..., T], *args: object) -> T:
    """Run ``func(*args)``, which reads the database and touches no network."""
    if ctx.database.dialect == "sqlite":
        return func(*args)
    return await run_in_threadpool(func, *args)
