"""Full LTI 1.3 launches per second on one worker, beside the cost of verifying one id_token.

    python benches/launch.py [--launches N] [--database-url URL] [--profile]
    python benches/launch.py --workers 1,2,4 --database-url postgresql+psycopg://…

A launch is the three requests the tool serves: ``GET /lti/login`` (OIDC initiation),
``POST /lti/launch`` (the signed id_token) and ``GET /`` (the first page). The app runs
in-process behind Starlette's ``TestClient`` with its real middleware, thread pool, templates
and database (a fresh SQLite file migrated with Alembic by default); the platform is
``tests.lti_platform.TestPlatform``, its JWKS served over real HTTP on 127.0.0.1.

*Server time* is measured inside the ASGI call, from the moment the app is called until it
returns, minus the time the app spends blocked handing its response to the test client (the
TestClient's body stream has no buffer, so a plain wall clock would charge the client's
thread hops to the server). The platform's RS256 signing happens between requests and is
never counted. Client round trips are printed too, for reference.

The floor is ``jwt.decode`` of the same kind of id_token with an already-parsed RSA key (what
``lti.platform_keys`` caches). The named peer is what pylti1p3 pays per launch without key
caching: ``JWK.from_json`` + ``export_to_pem`` + ``jwt.decode`` with the PEM string.

Target (issue): a whole launch in under 2 ms of server time on SQLite.

``--workers N[,N…]`` measures the real thing instead: ``blend727 serve --workers N`` started as
a process on PostgreSQL (a throwaway schema), driven over real HTTP by ``--clients`` client
processes at once (each: login → platform authorisation → launch POST → first page, new
users), printing launches per second and the p50/p99 of a whole launch (the three requests'
round trips; the platform's signing in between is left out) for each N — beside the named
peer, ``serve --workers 1`` on a SQLite file under the same load. Clients and servers share
the machine's cores, as they would not in production: compare the rows, not the absolutes.

``--profile`` runs cProfile over 200 launches instead (thread pool calls run inline so that
one profiler sees all the server's work) and prints the top 25 functions by cumulative time,
the top functions by own time and the SQL statements of a launch.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import logging
import os
import platform as pyplatform
import pstats
import statistics
import sys
import tempfile
import time
import uuid
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Starlette 1.x warns that its TestClient is moving from httpx to httpx2: not this bench's business.
warnings.filterwarnings("ignore", message=".*`httpx` with `starlette.testclient`.*")

import anyio.to_thread  # noqa: E402
import jwt  # noqa: E402
from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import padding  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from jwcrypto.jwk import JWK  # noqa: E402
from sqlalchemy import create_engine, event, text  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402

from app.config import Settings  # noqa: E402
from app.core.db import Database, build_engine, normalise_url  # noqa: E402
from app.core.migrate import upgrade, upgrade_connection  # noqa: E402
from app.main import create_app  # noqa: E402
from app.platforms.service import PlatformInput, PlatformService  # noqa: E402
from tests.lti_platform import TestPlatform, platform_server  # noqa: E402

TOOL_BASE_URL = "https://tool.test"
SECRET_KEY = "bench-secret-" + "x" * 32
TARGET_MS = 2.0
STEPS = ("login", "launch", "page")
STEP_LABELS = {
    "login": "login       GET  /lti/login",
    "launch": "launch      POST /lti/launch",
    "page": "first page  GET  /",
    "total": "whole launch",
}
PROFILE_LAUNCHES = 200
CENSUS_LAUNCHES = 50


# -- measuring server time -------------------------------------------------------------------


class ServerTimer:
    """ASGI wrapper: time inside the app, minus time blocked in ``send`` (the transport).

    ``profiler``, when set, is enabled only while the app runs, so a profile holds the
    server's work and nothing of the client's or the platform's.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.last = 0.0
        self.profiler: cProfile.Profile | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        blocked = 0.0

        async def timed_send(message: Any) -> None:
            nonlocal blocked
            if self.profiler is not None:
                self.profiler.disable()
            t0 = time.perf_counter()
            try:
                await send(message)
            finally:
                blocked += time.perf_counter() - t0
                if self.profiler is not None:
                    self.profiler.enable()

        start = time.perf_counter()
        if self.profiler is not None:
            self.profiler.enable()
        try:
            await self.app(scope, receive, timed_send)
        finally:
            if self.profiler is not None:
                self.profiler.disable()
            self.last = time.perf_counter() - start - blocked


@dataclass
class Sample:
    server: dict[str, float] = field(default_factory=dict)  # seconds per step
    client: dict[str, float] = field(default_factory=dict)


@dataclass
class Bench:
    client: TestClient
    timer: ServerTimer
    platform: TestPlatform
    step: str = ""  # the request in flight, for the SQL census

    def launch(self, sub: str) -> Sample:
        """One whole launch; only the tool's three requests are timed."""
        sample = Sample()
        params = self.platform.login_params(login_hint=sub)
        url = "/lti/login?" + urlencode(params)

        self.step = "login"
        t0 = time.perf_counter()
        response = self.client.get(url)
        sample.client["login"] = time.perf_counter() - t0
        sample.server["login"] = self.timer.last
        if response.status_code != 302:
            raise RuntimeError(f"login answered {response.status_code}: {response.text[:300]}")

        # The platform's work: check the auth request, build and sign the id_token.
        auth = self.platform.authorize(response.headers["location"])
        token = self.platform.sign(self.platform.claims(nonce=auth["nonce"], sub=sub))
        form = {"id_token": token, "state": auth["state"]}

        self.step = "launch"
        t0 = time.perf_counter()
        response = self.client.post("/lti/launch", data=form)
        sample.client["launch"] = time.perf_counter() - t0
        sample.server["launch"] = self.timer.last
        if response.status_code != 303:
            raise RuntimeError(f"launch answered {response.status_code}: {response.text[:300]}")

        self.step = "page"
        t0 = time.perf_counter()
        response = self.client.get("/")
        sample.client["page"] = time.perf_counter() - t0
        sample.server["page"] = self.timer.last
        if response.status_code != 200 or "Nguyễn Văn An" not in response.text:
            raise RuntimeError(f"first page answered {response.status_code}: {response.text[:300]}")
        self.step = ""

        sample.server["total"] = sum(sample.server[s] for s in STEPS)
        sample.client["total"] = sum(sample.client[s] for s in STEPS)
        return sample

    def run(self, subs: list[str]) -> list[Sample]:
        return [self.launch(sub) for sub in subs]


# -- the database ----------------------------------------------------------------------------


@contextmanager
def fresh_database(url: str | None) -> Iterator[tuple[Database, str]]:
    """A migrated, empty database: a temporary SQLite file, or a throwaway PostgreSQL schema."""
    if url is None:
        with tempfile.TemporaryDirectory(prefix="blend727-bench-") as tmp:
            sqlite_url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            upgrade(sqlite_url)
            engine = build_engine(sqlite_url)
            try:
                yield Database(engine), sqlite_url
            finally:
                engine.dispose()
        return
    url = normalise_url(url)
    if not url.startswith("postgresql"):
        engine = build_engine(url)
        with engine.begin() as conn:
            upgrade_connection(conn)
        try:
            yield Database(engine), url
        finally:
            engine.dispose()
        return
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine: Engine | None = None
    try:
        engine = build_engine(url, connect_args={"options": f"-csearch_path={schema}"})
        with engine.begin() as conn:
            upgrade_connection(conn)
        yield Database(engine), f"{url} (schema {schema})"
    finally:
        if engine is not None:
            engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def register(database: Database, platform: TestPlatform) -> None:
    with database.session() as session:
        PlatformService(session).register(
            PlatformInput(
                issuer=platform.issuer,
                client_id=platform.client_id,
                auth_login_url=platform.auth_login_url,
                token_url=platform.token_url,
                keyset_url=platform.keyset_url,
                deployment_ids=[platform.deployment_id],
                name="Bench LMS",
            ),
            update=True,  # an explicit --database-url may be reused
        )


# -- statistics and printing -----------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary(values: list[float]) -> tuple[float, float, float]:
    return statistics.fmean(values), pct(values, 50), pct(values, 99)


def print_run(title: str, samples: list[Sample]) -> float:
    """Print one run's table; return the mean whole-launch server time in seconds."""
    print(f"\n{title} — {len(samples)} launches")
    print(f"  {'server time, ms':<31}{'mean':>8}{'p50':>8}{'p99':>8}   {'client round trip':>18}")
    for step in (*STEPS, "total"):
        server = [s.server[step] * 1e3 for s in samples]
        client = [s.client[step] * 1e3 for s in samples]
        mean, p50, p99 = summary(server)
        print(
            f"  {STEP_LABELS[step]:<31}{mean:8.3f}{p50:8.3f}{p99:8.3f}"
            f"   {statistics.fmean(client):13.3f} mean"
        )
    total = statistics.fmean(s.server["total"] for s in samples)
    client_total = statistics.fmean(s.client["total"] for s in samples)
    print(
        f"  launches/s on one worker: {1 / total:,.0f} (server time)"
        f"   [{1 / client_total:,.0f} through the TestClient]"
    )
    return total


# -- the floor and the peer ------------------------------------------------------------------


def time_calls(func: Callable[[], object], iterations: int) -> tuple[float, float]:
    """Mean and median seconds per call."""
    for _ in range(min(50, iterations)):
        func()
    times = []
    for _ in range(iterations):
        t0 = time.perf_counter()
        func()
        times.append(time.perf_counter() - t0)
    return statistics.fmean(times), statistics.median(times)


def measure_floor(platform: TestPlatform, iterations: int) -> dict[str, tuple[float, float]]:
    key_jwk = platform.keys[0].jwk()
    token = platform.sign(platform.claims(nonce="floor-nonce", sub="floor"))
    loaded = jwt.PyJWK(key_jwk, algorithm="RS256").key
    audience, issuer = platform.client_id, platform.issuer

    def floor() -> object:
        return jwt.decode(token, loaded, algorithms=["RS256"], audience=audience, issuer=issuer)

    def pylti1p3_uncached() -> object:
        # MessageLaunch.get_public_key + validate_jwt_signature, pylti1p3next 2.0.2
        pem = JWK.from_json(json.dumps(key_jwk)).export_to_pem()
        return jwt.decode(token, pem, algorithms=["RS256"], options={"verify_aud": False})

    signing_input, _, signature = token.rpartition(".")
    raw_signature = jwt.utils.base64url_decode(signature)

    def raw_verify() -> None:
        loaded.verify(raw_signature, signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())

    return {
        "floor": time_calls(floor, iterations),
        "peer": time_calls(pylti1p3_uncached, max(200, iterations // 4)),
        "raw": time_calls(raw_verify, iterations),
    }


# -- profiling -------------------------------------------------------------------------------


async def _inline_run_sync(func: Callable[..., Any], *args: Any, **_: Any) -> Any:
    return func(*args)


@contextmanager
def inline_threadpool() -> Iterator[None]:
    """Run ``run_in_threadpool`` work on the event loop thread, where the profiler is."""
    original = anyio.to_thread.run_sync
    anyio.to_thread.run_sync = _inline_run_sync  # type: ignore[assignment]
    try:
        yield
    finally:
        anyio.to_thread.run_sync = original


def _where(code: tuple[str, int, str]) -> str:
    filename, line, name = code
    if filename == "~":
        return name
    for marker in ("site-packages/", "lib/python3"):
        if marker in filename:
            filename = filename.split(marker, 1)[1]
            break
    else:
        with suppress(ValueError):
            filename = str(Path(filename).resolve().relative_to(ROOT))
    return f"{filename}:{line}({name})"


# Frames that only pass a request along (ASGI middleware, routing, the event loop, this bench):
# their cumulative time is the whole request, so they would fill the top of the list.
PLUMBING = ("fastapi/", "starlette/", "anyio/", "asyncio/", "contextlib.py", "benches/launch.py")


def print_profile(profiler: cProfile.Profile, launches: int, top: int = 25) -> None:
    stats = pstats.Stats(profiler)
    rows = stats.stats  # type: ignore[attr-defined]
    total = sum(tt for (_cc, _nc, tt, _ct, _callers) in rows.values())
    plumbing = {code for code in rows if any(mark in code[0] for mark in PLUMBING)}
    plumbing_own = sum(rows[code][2] for code in plumbing)
    print(
        f"\ncProfile over {launches} launches: {total / launches * 1e3:.3f} ms of profiled"
        " server time per launch (the profiler roughly doubles it)"
    )
    print(
        f"  of which FastAPI/Starlette/anyio/asyncio frames' own time:"
        f" {plumbing_own / launches * 1e3:.3f} ms"
    )
    header = f"  {'calls/launch':>12} {'own µs':>9} {'cum µs':>9}  function"

    def show(items: list[tuple[Any, Any]]) -> None:
        for code, (_cc, nc, tt, ct, _callers) in items:
            print(
                f"  {nc / launches:12.1f} {tt / launches * 1e6:9.1f} {ct / launches * 1e6:9.1f}"
                f"  {_where(code)}"
            )

    print(f"\nTop {top} by cumulative time, per launch (pass-through framework frames left out)")
    print(header)
    show(
        sorted(
            ((c, v) for c, v in rows.items() if c not in plumbing),
            key=lambda kv: kv[1][3],
            reverse=True,
        )[:top]
    )
    print(f"\nTop 15 by own time, per launch\n{header}")
    show(sorted(rows.items(), key=lambda kv: kv[1][2], reverse=True)[:15])


@dataclass
class SqlCensus:
    bench: Bench
    counts: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    seconds: dict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))
    _started: float = 0.0

    def attach(self, engine: Engine) -> None:
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)
        event.listen(engine, "commit", self._commit)

    def detach(self, engine: Engine) -> None:
        event.remove(engine, "before_cursor_execute", self._before)
        event.remove(engine, "after_cursor_execute", self._after)
        event.remove(engine, "commit", self._commit)

    def _before(self, *_: Any) -> None:
        self._started = time.perf_counter()

    def _after(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        key = (self.bench.step or "-", " ".join(statement.split())[:110])
        self.counts[key] += 1
        self.seconds[key] += time.perf_counter() - self._started

    def _commit(self, *_: Any) -> None:
        self.counts[(self.bench.step or "-", "COMMIT")] += 1

    def print(self, launches: int) -> None:
        print(
            f"\nSQL per launch (times executed × mean µs in the driver; {launches} launches,"
            " no profiler)"
        )
        for step in STEPS:
            keys = [k for k in self.counts if k[0] == step]
            n = sum(self.counts[k] for k in keys if k[1] != "COMMIT") / launches
            driver = sum(self.seconds[k] for k in keys) / launches * 1e6
            print(
                f"  {STEP_LABELS[step]}: {n:.1f} statements + COMMIT, {driver:.0f} µs in the driver"
            )
            for key in sorted(keys, key=lambda k: -self.counts[k]):
                each = self.seconds[key] / self.counts[key] * 1e6
                shown = f"{each:6.1f}" if key[1] != "COMMIT" else "     -"
                print(f"    {self.counts[key] / launches:4.1f} × {shown}  {key[1]}")


# -- main ------------------------------------------------------------------------------------


def quiet_logging() -> None:
    """Keep the app's INFO logging (its formatting is part of a launch) but write it nowhere."""
    handler = logging.StreamHandler(open(os.devnull, "w"))  # noqa: SIM115 - lives as long as the process
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


def load_note() -> str:
    """Other work on the machine shows in the p99 first; say how busy it was before we start."""
    if not hasattr(os, "getloadavg"):
        return "load average unknown"
    load = os.getloadavg()[0]
    busy = load > 0.5 * (os.cpu_count() or 1)
    return f"load average {load:.2f}" + (" (busy machine: expect noisy figures)" if busy else "")


def versions() -> str:
    names = ("pylti1p3next", "PyJWT", "fastapi", "starlette", "SQLAlchemy", "jinja2")
    parts = []
    for name in names:
        try:
            parts.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return f"Python {pyplatform.python_version()}, " + ", ".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--launches", type=int, default=None, help="launches per run (1000; 480 with --workers)"
    )
    parser.add_argument("--warmup", type=int, default=100, help="warm-up launches (100, min 50)")
    parser.add_argument("--repeat-pool", type=int, default=50, help="users in the repeat run")
    parser.add_argument("--floor-iterations", type=int, default=2000)
    parser.add_argument(
        "--database-url",
        default=None,
        help="default: a fresh temporary SQLite file; postgresql+psycopg://… "
        "uses a throwaway schema",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help=f"cProfile {PROFILE_LAUNCHES} launches instead of timing runs",
    )
    parser.add_argument(
        "--workers",
        default=None,
        help="e.g. 1,2,4: run `blend727 serve --workers N` on PostgreSQL (--database-url) and "
        "drive it over real HTTP",
    )
    parser.add_argument(
        "--clients", type=int, default=8, help="client processes with --workers (8)"
    )
    args = parser.parse_args(argv)
    if args.workers:
        args.launches = args.launches or 480
        return http_main(args)
    args.launches = args.launches or 1000
    args.warmup = max(50, args.warmup)
    args.repeat_pool = max(1, min(args.repeat_pool, args.warmup))

    quiet_logging()
    with ExitStack() as stack:
        server_base = stack.enter_context(platform_server())
        database, shown_url = stack.enter_context(fresh_database(args.database_url))
        backend = database.dialect
        platform = TestPlatform.create(
            server_base, issuer="https://lms.bench.test", client_id="bench-client"
        )
        register(database, platform)
        settings = Settings(
            inprocess_worker=False,
            database_url="sqlite://",  # unused: the app is given the database object
            base_url=TOOL_BASE_URL,
            secret_key=SECRET_KEY,
            demo=False,
            log_level="INFO",
        )
        app = create_app(settings, database)
        quiet_logging()  # create_app's basicConfig found our handler; keep it the only one
        timer = ServerTimer(app)
        client = stack.enter_context(
            TestClient(timer, base_url=TOOL_BASE_URL, follow_redirects=False)
        )
        bench = Bench(client=client, timer=timer, platform=platform)

        print(f"blend727 launch bench — {backend}: {shown_url}")
        print(f"{versions()}; {os.cpu_count()} CPUs, {load_note()}")
        print(
            "server time = inside the ASGI app (thread pool hops included), without the "
            "TestClient transport\nand without the platform's signing of the id_token"
        )

        warm = [f"user-{i}" for i in range(args.warmup)]
        bench.run(warm)  # also the JWKS fetch, template compilation, statement caches
        if platform.jwks_hits() != 1:
            print(f"note: the platform's JWKS was fetched {platform.jwks_hits()} times")

        if args.profile:
            return profile(bench, database, args)

        new = bench.run([f"new-{i}" for i in range(args.launches)])
        repeat = bench.run([warm[i % args.repeat_pool] for i in range(args.launches)])
        floor = measure_floor(platform, args.floor_iterations)

    new_mean = print_run("Run 1: new users (each launch creates a user and a membership)", new)
    repeat_mean = print_run(
        f"Run 2: repeat users ({args.repeat_pool} users launching again)", repeat
    )

    floor_mean, floor_p50 = floor["floor"]
    peer_mean, peer_p50 = floor["peer"]
    raw_mean, raw_p50 = floor["raw"]
    print("\nid_token verification on this machine (µs per token)      mean      p50")
    print(
        f"  floor: jwt.decode with a loaded RSA key            {floor_mean * 1e6:9.1f}"
        f"{floor_p50 * 1e6:9.1f}"
    )
    print(
        f"  peer:  pylti1p3 without key caching                {peer_mean * 1e6:9.1f}"
        f"{peer_p50 * 1e6:9.1f}"
    )
    print("         (JWK.from_json + export_to_pem + jwt.decode(PEM))")
    print(
        f"  ref:   raw RSA-SHA256 verify (cryptography)        {raw_mean * 1e6:9.1f}"
        f"{raw_p50 * 1e6:9.1f}"
    )

    print("\nSide by side                                   µs each    per second   × floor")
    rows = [
        ("whole launch, new users (server time)", new_mean),
        ("whole launch, repeat users (server time)", repeat_mean),
        ("peer: pylti1p3 uncached-key verification", peer_mean),
        ("floor: jwt.decode, loaded key", floor_mean),
    ]
    for label, seconds in rows:
        print(f"  {label:<43}{seconds * 1e6:10.1f}{1 / seconds:14,.0f}{seconds / floor_mean:9.1f}")

    new_p50 = pct([x.server["total"] for x in new], 50)
    repeat_p50 = pct([x.server["total"] for x in repeat], 50)
    verdict = "MET" if max(new_mean, repeat_mean) * 1e3 < TARGET_MS else "NOT MET"
    scope = "" if backend == "sqlite" else f"\n  (the target is for SQLite; this run is {backend})"
    print(
        f"\nTarget: a whole launch in under {TARGET_MS:.0f} ms of server time on SQLite — "
        f"{verdict}\n  mean {new_mean * 1e3:.3f} ms new users, {repeat_mean * 1e3:.3f} ms repeat"
        f" users (p50 {new_p50 * 1e3:.3f} / {repeat_p50 * 1e3:.3f} ms){scope}"
    )
    return 0


def profile(bench: Bench, database: Database, args: argparse.Namespace) -> int:
    profiler = cProfile.Profile()
    with inline_threadpool():
        bench.run([f"inline-warm-{i}" for i in range(20)])
        bench.timer.profiler = profiler
        try:
            bench.run([f"prof-{i}" for i in range(PROFILE_LAUNCHES)])
        finally:
            bench.timer.profiler = None
    # The SQL census runs apart from the profile so that its listeners do not show up there.
    census = SqlCensus(bench)
    census.attach(database.engine)
    try:
        bench.run([f"census-{i}" for i in range(CENSUS_LAUNCHES)])
    finally:
        census.detach(database.engine)
    print(
        f"\n--profile: {PROFILE_LAUNCHES} new-user launches after {args.warmup} warm-up"
        " launches; thread-pool work run inline on the event loop thread"
    )
    print_profile(profiler, PROFILE_LAUNCHES)
    census.print(CENSUS_LAUNCHES)
    return 0


# -- several workers over real HTTP ----------------------------------------------------------

HTTP_PORTS = range(8830, 8840)
HTTP_WARMUP_PER_CLIENT = 10
_http_target: tuple[TestPlatform, str, str] | None = None  # platform, base URL, run name


def _http_port() -> int:
    import socket

    for port in HTTP_PORTS:
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 8830–8839")


def _http_client(job: tuple[int, int]) -> list[float]:
    """One client process: ``count`` launches one after another; seconds of each."""
    import httpx

    assert _http_target is not None
    platform, base, run = _http_target
    index, count = job
    times: list[float] = []
    with httpx.Client(timeout=60) as client:
        for i in range(count):
            sub = f"{run}-{index}-{i}"
            client.cookies.clear()
            t0 = time.perf_counter()
            r = client.get(f"{base}/lti/login?" + urlencode(platform.login_params(login_hint=sub)))
            spent = time.perf_counter() - t0
            if r.status_code != 302:
                raise RuntimeError(f"login answered {r.status_code}: {r.text[:300]}")
            auth = platform.authorize(r.headers["location"])
            token = platform.sign(platform.claims(nonce=auth["nonce"], sub=sub))
            t0 = time.perf_counter()
            r = client.post(f"{base}/lti/launch", data={"id_token": token, "state": auth["state"]})
            if r.status_code != 303:
                raise RuntimeError(f"launch answered {r.status_code}: {r.text[:300]}")
            page = client.get(base + r.headers["location"])
            spent += time.perf_counter() - t0
            if page.status_code != 200 or "Nguyễn Văn An" not in page.text:
                raise RuntimeError(f"first page answered {page.status_code}")
            times.append(spent)
    return times


@contextmanager
def _served(url: str, workers: int, log: Path) -> Iterator[str]:
    """``blend727 serve --workers N`` as a process on ``url``; yields its base URL."""
    import subprocess

    import httpx

    port = _http_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BLEND727_", "PROMETHEUS_"))}
    env.update(
        {
            "BLEND727_DATABASE_URL": url,
            "BLEND727_BASE_URL": base,
            "BLEND727_INPROCESS_WORKER": "false",
            "BLEND727_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
        }
    )
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "app.cli",
                "serve",
                "--port",
                str(port),
                "--workers",
                str(workers),
            ],
            env=env,
            cwd=log.parent,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"serve did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _http_run(
    platform: TestPlatform, url: str, workers: int, args: argparse.Namespace, name: str, log: Path
) -> tuple[float, list[float]]:
    """Launches per second and each launch's seconds, for one server configuration."""
    import multiprocessing
    from dataclasses import replace

    global _http_target
    context = multiprocessing.get_context("fork")  # the clients inherit the platform's keys
    with _served(url, workers, log) as base:
        _http_target = (replace(platform, tool_url=base), base, f"{name}-warm")
        with context.Pool(args.clients) as pool:
            pool.map(_http_client, [(i, HTTP_WARMUP_PER_CLIENT) for i in range(args.clients)])
        _http_target = (replace(platform, tool_url=base), base, name)
        per_client = max(1, args.launches // args.clients)
        with context.Pool(args.clients) as pool:
            t0 = time.perf_counter()
            results = pool.map(_http_client, [(i, per_client) for i in range(args.clients)])
            wall = time.perf_counter() - t0
    times = [t for r in results for t in r]
    return len(times) / wall, times


def http_main(args: argparse.Namespace) -> int:
    counts = [int(n) for n in str(args.workers).split(",") if n.strip()]
    if not args.database_url or not normalise_url(args.database_url).startswith("postgresql"):
        print("--workers needs --database-url postgresql+psycopg://… (SQLite serves one worker)")
        return 2
    quiet_logging()
    rows: list[tuple[str, float, list[float]]] = []
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="blend727-http-")))
        server_base = stack.enter_context(platform_server())
        platform = TestPlatform.create(
            server_base, issuer="https://lms.bench.test", client_id="bench-client"
        )
        print(
            f"blend727 launch bench over real HTTP — {args.clients} client processes, "
            f"{max(1, args.launches // args.clients) * args.clients} new-user launches per run "
            f"(after {HTTP_WARMUP_PER_CLIENT * args.clients} warm-up)"
        )
        print(f"{versions()}; {os.cpu_count()} CPUs, {load_note()}")
        # The named peer: one worker on SQLite, the same load.
        sqlite_url = f"sqlite:///{tmp / 'peer.db'}"
        upgrade(sqlite_url)
        peer_db = Database(build_engine(sqlite_url))
        register(peer_db, platform)
        peer_db.engine.dispose()
        rate, times = _http_run(platform, sqlite_url, 1, args, "peer", tmp / "peer.log")
        rows.append(("peer: SQLite, serve --workers 1", rate, times))
        database, shown = stack.enter_context(fresh_database(args.database_url))
        register(database, platform)
        schema = shown.split("(schema ", 1)[1].rstrip(")") if "(schema " in shown else None
        url = normalise_url(args.database_url)
        if schema:
            url += ("&" if "?" in url else "?") + f"options=-csearch_path%3D{schema}"
        for n in counts:
            rate, times = _http_run(platform, url, n, args, f"w{n}", tmp / f"w{n}.log")
            rows.append((f"PostgreSQL, serve --workers {n}", rate, times))
    print(f"\n  {'server':<36}{'launches/s':>11}{'p50 ms':>9}{'p99 ms':>9}")
    for label, rate, times in rows:
        print(f"  {label:<36}{rate:11.1f}{pct(times, 50) * 1e3:9.1f}{pct(times, 99) * 1e3:9.1f}")
    print(
        "  (a whole launch: login + launch POST + first page round trips; clients and "
        "servers share the cores)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
