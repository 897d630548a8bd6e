"""Scores through the durable outbox to a local AGS endpoint, per second.

    python benches/outbox.py [--scores 10000] [--database-url URL]

Queues N final scores (one per learner) for one line item, then drains the outbox with one
``OutboxWorker`` against the test platform's AGS endpoint (tests/lti_platform.py, Moodle-like,
real HTTP on 127.0.0.1). Three runs, each on a fresh outbox:

* with the access-token cache (one token for the whole run);
* without it (the named peer: a token request, i.e. an RS256 client assertion and a round
  trip to the token endpoint, before every score — what pylti1p3's connector does when it is
  given no cache);
* with the cache while the platform fails 30% of requests (answers lost after processing,
  so retries meet Moodle's 409 and count as delivered).

Each run checks that every score landed exactly once. Time to queue is printed separately.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
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


def queue(
    database: Database, deployment_pk: int, link: ResourceLink, users: list[User], line_item: str
) -> float:
    started = time.perf_counter()
    with database.session() as s:
        s.add(link)
        for i, user in enumerate(users):
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


def run(
    label: str, url: str, server: str, n: int, *, cache: TokenCache, failures: float
) -> tuple[str, int, float, float, int, int]:
    database = Database(build_engine(url))
    lms, _pid, dep, users, link, line_item = setup(database, server, n)
    queued = queue(database, dep, link, users, line_item)
    if failures:
        lms.fail_randomly(failures, seed=727, after_processing=True)
    seconds = drain(OutboxWorker(database, build_session(10), batch=200, token_cache=cache))
    applied = len(lms.applied_scores())
    twice = sum(1 for u in users if len(lms.applied_scores(user_id=u.sub)) != 1)
    database.engine.dispose()
    return label, n, queued, seconds, lms.token_hits(), applied - n + twice


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scores", type=int, default=10_000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    n = args.scores
    with platform_server() as server, tempfile.TemporaryDirectory() as tmp:
        rows = []
        for i, (label, cache, failures) in enumerate(
            [
                ("with token cache", TokenCache(), 0.0),
                ("peer: no token cache", NoCache(), 0.0),
                ("with cache, 30% failing", TokenCache(), 0.3),
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
            rows.append(run(label, url, server, n, cache=cache, failures=failures))
            if args.database_url:
                with admin.begin() as c:
                    c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
                admin.dispose()
    print(f"Scores through the outbox to a local AGS endpoint ({n:,} scores, one worker)")
    print(f"  {'run':<28}{'queue s':>9}{'send s':>9}{'scores/s':>10}{'tokens':>8}{'wrong':>7}")
    for label, count, queued, seconds, tokens, wrong in rows:
        rate = count / seconds
        print(f"  {label:<28}{queued:>9.2f}{seconds:>9.2f}{rate:>10,.0f}{tokens:>8,}{wrong:>7}")
    base = rows[0][3]
    print(f"  token cache speed-up over the peer: x{rows[1][3] / base:.1f}")
    print("  'wrong' = scores not applied exactly once by the gradebook (must be 0)")


if __name__ == "__main__":
    main()
