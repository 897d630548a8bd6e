"""Periodic work that exactly one process does at a time, whatever the number of servers and
workers: the result sweep, the purge of expired nonces and sessions.

A task is a ``lease`` row. ``PeriodicTask.run_if_due`` takes it when it has expired, runs the
work while holding it for ``hold`` (the work calls ``keep()`` to hold it longer), then hands it
back with ``expires_at`` = start + ``every``: the next due time, for whichever process comes
first. A process that dies mid-task leaves a hold that runs out; another takes over then.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TypeVar

from app.core.db import Database
from app.core.time import utcnow
from app.ops.repository import LeaseRepository

log = logging.getLogger("blend727.ops")

T = TypeVar("T")

_process: tuple[int, str] | None = None


def process_name() -> str:
    """``host:pid:random`` — who holds a lease or runs a job (new after a fork)."""
    global _process
    pid = os.getpid()
    if _process is None or _process[0] != pid:
        _process = (pid, f"{socket.gethostname()}:{pid}:{secrets.token_hex(3)}")
    return _process[1]


class PeriodicTask:
    def __init__(
        self,
        database: Database,
        name: str,
        *,
        every: timedelta,
        hold: timedelta,
        check_every: timedelta | None = None,
        owner: str | None = None,
    ) -> None:
        self.database = database
        self.name = name
        self.every = every
        self.hold = hold
        # How often this process asks the database whether the task is due.
        self.check_every = check_every if check_every is not None else min(every / 4, hold)
        self.owner = owner or process_name()
        self._next_check: datetime | None = None

    def run_if_due(
        self, work: Callable[[Callable[[], bool]], T], now: datetime | None = None
    ) -> tuple[bool, T | None]:
        """``(True, result)`` when this process ran ``work``; ``(False, None)`` when the task
        was not due or another process holds it. ``work`` gets ``keep()`` (False once the
        lease is lost, when it should stop)."""
        now = now or utcnow()
        if self._next_check is not None and now < self._next_check:
            return False, None
        self._next_check = now + self.check_every
        with self.database.session() as db:
            if not LeaseRepository(db).acquire(self.name, self.owner, now, now + self.hold):
                return False, None
        try:
            return True, work(self.keep)
        finally:
            # Due again `every` after this run started, for any process.
            with self.database.session() as db:
                LeaseRepository(db).extend(self.name, self.owner, now + self.every)

    def keep(self) -> bool:
        """Hold the task ``hold`` longer (long work calls it as it goes)."""
        with self.database.session() as db:
            held = LeaseRepository(db).extend(self.name, self.owner, utcnow() + self.hold)
        if not held:
            log.warning("lost the %s lease to another process", self.name)
        return held
