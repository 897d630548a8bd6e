"""Guessing certificate codes on the public ``/verify/<code>`` is capped.

Unknown codes are counted per client address and clock minute in ``verify_miss`` — a row,
so every worker and host sees the same count. A client that has asked for
``BLEND727_VERIFY_MISSES_PER_MINUTE`` unknown codes in the current minute gets 429 (with
``Retry-After``: the seconds left in that minute) for every code, known or not, until the
minute ends — a 429 only for misses would tell a guesser which codes exist.

The address is the one the proxy middleware resolved (trusted ``X-Forwarded-For``); an IPv6
client is counted by its /64 network, which one subscriber usually holds whole. The path of a
known code reads one row by its primary key and writes nothing; a miss adds one upsert.
Housekeeping deletes rows older than ``KEEP``.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.certificates.models import VerifyMiss
from app.core.errors import AppError
from app.core.proxy import parse_address

#: How long a minute's count is kept (only the current minute is read).
KEEP = timedelta(minutes=5)


class TooManyGuesses(AppError):
    status_code = 429
    code = "too_many_attempts"
    title = "Too many attempts"
    detail = (
        "Too many codes that match no certificate were checked from your connection. Wait "
        "%(seconds)s seconds, then check the code again."
    )

    def __init__(self, seconds: int) -> None:
        super().__init__(
            params={"seconds": seconds}, log_detail=f"over the limit; retry in {seconds} s"
        )
        self.headers = {"Retry-After": str(seconds)}


def client_key(host: str | None) -> str:
    """What the count is kept by: the IPv4 address, or the IPv6 /64 network."""
    address = parse_address(host or "")
    if address is None:
        return "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def minute_of(now: datetime) -> datetime:
    return now.replace(second=0, microsecond=0)


class VerifyLimit:
    def __init__(self, session: Session) -> None:
        self.session = session

    def wait_seconds(self, client: str, now: datetime, limit: int) -> int:
        """0 when ``client`` may check a code now, else the seconds until it may."""
        stmt = select(VerifyMiss.misses).where(
            VerifyMiss.client == client, VerifyMiss.minute == minute_of(now)
        )
        misses = self.session.scalar(stmt) or 0
        if misses < limit:
            return 0
        return max(1, 60 - now.second)

    def record_miss(self, client: str, now: datetime) -> None:
        """One more unknown code for ``client`` this minute (one statement, race-free)."""
        dialect = self.session.get_bind().dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        table = VerifyMiss.__table__
        stmt = insert(VerifyMiss).values(client=client, minute=minute_of(now), misses=1)
        stmt = stmt.on_conflict_do_update(
            index_elements=["client", "minute"], set_={"misses": table.c.misses + 1}
        )
        self.session.execute(stmt)

    def prune(self, now: datetime) -> int:
        result = self.session.execute(delete(VerifyMiss).where(VerifyMiss.minute < now - KEEP))
        return int(getattr(result, "rowcount", 0) or 0)
