"""Scores through the durable outbox to a local AGS endpoint, per second.

    python benches/outbox.py [--scores 10000] [--peer-scores 2000] [--database-url URL]

Queues N final scores (one per learner) for one line item, then drains the outbox with one
``OutboxWorker`` against the test platform's AGS endpoint (tests/lti_platform.py, Moodle-like,
real HTTP on 127.0.0.1). Three runs, each on a fresh outbox:

* with the access-token cache (one token for the whole run);
* without it (the named peer: a token request, i.e. an RS256 client assertion and a round
  trip to the token endpoint, before every score — what pylti1p3's connector does when it is
  given no cache); it sends ``--peer-scores`` scores (default: at most 2,000, so that the
  whole bench stays within a few minutes) and is compared per second;
* with the cache while the platform fails 30% of AGS requests (answers lost after
  processing, so retries meet Moodle's 409 and count as delivered; the token endpoint
  never fails).

Each run checks that every score landed exactly once. Time to queue is printed separately,
and token requests (all, including refused ones) apart from tokens issued: a refused token
request is a bench fault (it is reported) and would make both figures wrong.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402

from app.core.db import Database, build_engine  # noqa: E402
from app.core.migrate import upgrade  # noqa: E402
from app.core.time import utcnow  # noqa: E402
from app.identity.models import ResourceLink, User  # noqa: E402
from app.keys import service as key_service  # noqa: E402
from app.keys.service import KeyService  # noqa: E402
from app.passback.service import OutboxWorker, enqueue_score  # noqa: E402
from app.platforms.repository import PlatformRepository  # noqa: E402
from app.platforms.service import PlatformInput, PlatformService  # noqa: E402
from lti.http import build_session  # noqa: E402
from lti.services import TokenCache  # noqa: E402
from tests.lti_platform import TestPlatform, platform_server  # noqa: E402


class NoCache(TokenCache):
    """Keeps nothing: every score fetches a new access token."""

    def put(self, key, token, expires_in, *, received_at=None):  # type: ignore[no-untyped-def]
        return False


def setup(
    database: Database, server: str, n: int
) -> tuple[TestPlatform, int, int, list[User], ResourceLink, str]:
    # Each run has a database of its own, hence a tool key of its own, but the parsed current
    # key is kept process-wide for 30 s (app/keys/service.py). Without this the worker of the
    # next run signs its client assertions with the previous run's key for 30 s: the token
    # endpoint refuses them ("unknown kid"), every score is retried until the key is re-read,
    # and the refused token requests used to be counted as tokens (~10,000 for 2,000 scores).
    key_service._cache.clear()
    with database.session() as s:
        KeyService(s).ensure_key()
        jwks = KeyService(s).jwks()
    lms = TestPlatform.create(
        server, issuer=f"https://moodle-{uuid.uuid4().hex[:6]}.bench", client_id="bench"
    )
    lms.trust_tool_jwks(jwks)
    lms.enable_ags(2)
    line_item = lms.couple_line_item("rl-1", label="Mô đun 4", score_maximum=10)
    with database.session() as s:
        platform = PlatformService(s).register(
            PlatformInput(
                issuer=lms.issuer,
                client_id=lms.client_id,
                auth_login_url=lms.auth_login_url,
                token_url=lms.served_token_url,
                keyset_url=lms.keyset_url,
                deployment_ids=["1"],
            )
        )
        deployment_pk = PlatformRepository(s).deployment_pk(platform.id, "1")
        assert deployment_pk is not None
        link = ResourceLink(
            deployment_id=deployment_pk,
            resource_link_id="rl-1",
            ags_endpoint=lms.ags_claim("rl-1"),
            custom={},
        )
        users = [User(platform_id=platform.id, sub=f"b{i}") for i in range(n)]
        s.add_all([link, *users])
        s.flush()
        s.expunge_all()
    return lms, platform.id, deployment_pk, users, link, line_item


QUEUE_CHUNK = 200  # scores queued per unit of work: a class's grades saved at once


def queue(
    database: Database, deployment_pk: int, link: ResourceLink, users: list[User], line_item: str
) -> float:
    """Queue one score per user, ``QUEUE_CHUNK`` per session as requests would (in one
    session for all of them, each enqueue's UPDATE also walks every row the session holds).
    Still more than linear on SQLite: its planner runs the enqueue's "supersede" UPDATE on
    ``ix_score_outbox_due`` (status = pending), i.e. over every pending row."""
    started = time.perf_counter()
    for first in range(0, len(users), QUEUE_CHUNK):
        with database.session() as s:
            s.add(link)
            for i, user in enumerate(users[first : first + QUEUE_CHUNK], start=first):
                s.add(user)
                enqueue_score(
                    s,
                    deployment_id=deployment_pk,
                    resource_link=link,
                    line_item_url=line_item,
                    user=user,
                    score_given=Decimal(5 + i % 5),
                    score_maximum=Decimal(10),
                    activity_progress="Completed",
                    grading_progress="FullyGraded",
                )
    return time.perf_counter() - started


def drain(worker: OutboxWorker, max_rounds: int = 5000) -> float:
    """Until nothing is due; each round an hour later so that retries come due at once."""
    started = time.perf_counter()
    later = utcnow()
    for _ in range(max_rounds):
        later += timedelta(hours=1)
        if worker.run_once(now=later).claimed == 0:
            return time.perf_counter() - started
    raise SystemExit("the outbox did not drain: see score_outbox.last_error")


@dataclass(frozen=True)
class Row:
    label: str
    scores: int
    queue_seconds: float
    send_seconds: float
    token_requests: int  # every request to the token endpoint, refused ones included
    tokens_issued: int
    token_refusals: list[str]
    wrong: int  # scores not applied exactly once


def run(label: str, url: str, server: str, n: int, *, cache: TokenCache, failures: float) -> Row:
    database = Database(build_engine(url))
    lms, _pid, dep, users, link, line_item = setup(database, server, n)
    queued = queue(database, dep, link, users, line_item)
    if failures:
        lms.fail_randomly(failures, seed=727, after_processing=True)
    seconds = drain(OutboxWorker(database, build_session(10), batch=200, token_cache=cache))
    applied = lms.applied_scores()
    per_user = Counter(score["user_id"] for score in applied)
    twice = sum(1 for u in users if per_user[u.sub] != 1)  # one pass: n × applied is slow
    database.engine.dispose()
    return Row(
        label=label,
        scores=n,
        queue_seconds=queued,
        send_seconds=seconds,
        token_requests=lms.token_hits(),
        tokens_issued=lms.tokens_issued,
        token_refusals=list(lms.token_refusals),
        wrong=len(applied) - n + twice,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scores", type=int, default=10_000)
    parser.add_argument(
        "--peer-scores",
        type=int,
        default=None,
        help="scores for the peer without a token cache (default: --scores, at most 2,000)",
    )
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    n = args.scores
    peer_n = args.peer_scores if args.peer_scores is not None else min(n, 2_000)
    if n < 1 or peer_n < 1:
        parser.error("--scores and --peer-scores must be at least 1")
    started = time.perf_counter()
    with platform_server() as server, tempfile.TemporaryDirectory() as tmp:
        rows: list[Row] = []
        for i, (label, count, cache, failures) in enumerate(
            [
                ("with token cache", n, TokenCache(), 0.0),
                ("peer: no token cache", peer_n, NoCache(), 0.0),
                ("with cache, 30% failing", n, TokenCache(), 0.3),
            ]
        ):
            if args.database_url:
                schema = f"bench_outbox_{uuid.uuid4().hex[:8]}"
                admin = create_engine(args.database_url)
                with admin.begin() as c:
                    c.execute(text(f'CREATE SCHEMA "{schema}"'))
                url = (
                    args.database_url
                    + ("&" if "?" in args.database_url else "?")
                    + f"options=-csearch_path%3D{schema}"
                )
            else:
                url = f"sqlite:///{tmp}/outbox{i}.db"
            upgrade(url)
            rows.append(run(label, url, server, count, cache=cache, failures=failures))
            if args.database_url:
                with admin.begin() as c:
                    c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
                admin.dispose()
    print(f"Scores through the outbox to a local AGS endpoint ({n:,} scores, one worker)")
    print(
        f"  {'run':<26}{'scores':>8}{'queue s':>9}{'send s':>9}{'scores/s':>10}"
        f"{'tok req':>9}{'issued':>8}{'wrong':>7}"
    )
    for row in rows:
        rate = row.scores / row.send_seconds
        print(
            f"  {row.label:<26}{row.scores:>8,}{row.queue_seconds:>9.2f}{row.send_seconds:>9.2f}"
            f"{rate:>10,.0f}{row.token_requests:>9,}{row.tokens_issued:>8,}{row.wrong:>7}"
        )
    cached, peer = (r.scores / r.send_seconds for r in rows[:2])
    print(f"  token cache speed-up over the peer (scores/s): x{cached / peer:.1f}")
    if peer_n != n:
        print(
            f"  the peer sent {peer_n:,} scores, not {n:,} (a token per score is slow); "
            f"at its rate {n:,} would take ~{n / peer:.0f} s"
        )
    print("  'tok req' = token requests (incl. failed); 'issued' = tokens issued")
    print("  'wrong' = scores not applied exactly once by the gradebook (must be 0)")
    for row in rows:
        if row.token_refusals:
            print(
                f"  BENCH FAULT in '{row.label}': {len(row.token_refusals):,} token requests "
                f"refused, e.g. {row.token_refusals[0]!r}; its figures are not comparable"
            )
    print(f"  (whole bench: {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
