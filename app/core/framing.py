"""Which sites may show blend727 in a frame: CSP ``frame-ancestors``.

Moodle shows the tool in an iframe on its own pages, so ``frame-ancestors 'none'`` is not an
option; ``*`` would let any site frame a signed-in teacher's pages (clickjacking). The
answer is the registered LMSs: the origins of each active platform's issuer and
authorization endpoint, plus ``BLEND727_FRAME_ANCESTORS`` for an LMS whose pages live
elsewhere. The list comes from the database at start-up and every ``REFRESH_SECONDS``, so
every process of an installation agrees within that time of a new registration.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from urllib.parse import urlsplit

from app.core.db import Database

log = logging.getLogger("blend727.framing")

REFRESH_SECONDS = 60.0
#: The demonstration's stand-ins for an LMS run on this machine, on any port.
DEMO_ANCESTORS = ("http://127.0.0.1:*", "http://localhost:*")


def origin_of(url: str) -> str | None:
    """``https://lms.example.vn`` of ``https://lms.example.vn/mod/lti/auth.php``; ``None`` for
    anything that is not an http(s) URL with a host (never widen the list by accident)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname
    if any(c in host for c in " ;,'\"*"):
        return None
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    default = {"http": 80, "https": 443}[parts.scheme]
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def frame_ancestors(origins: Iterable[str]) -> str:
    """The directive's value: ``'self'`` and each origin once, in a stable order."""
    seen = dict.fromkeys(o for o in origins if o)
    return " ".join(["'self'", *sorted(seen)])


def policy_with(ancestors: str) -> bytes:
    """The whole Content-Security-Policy header of a response, with its frame-ancestors."""
    from app.core.middleware import CONTENT_SECURITY_POLICY

    return f"{CONTENT_SECURITY_POLICY}; frame-ancestors {ancestors}".encode()


#: Pages any site may frame. Dynamic registration runs in the LMS's window *before* the LMS is
#: registered (so it cannot be on the list yet); the page changes nothing a visitor owns.
OPEN_PATHS = frozenset({"/lti/register"})


class FrameAncestors:
    """The current ``frame-ancestors`` value of this process (read by the middleware)."""

    def __init__(self, extra: Iterable[str] = (), *, demo: bool = False) -> None:
        fixed = [o for o in (origin_of(u) for u in extra) if o]
        if demo:
            fixed.extend(DEMO_ANCESTORS)
        self._fixed = fixed
        self._demo = demo
        self._lock = threading.Lock()
        self.value = frame_ancestors(fixed)
        self.policy = policy_with(self.value)
        self.open_policy = policy_with("*")

    def refresh(self, database: Database) -> str:
        from app.platforms.repository import PlatformRepository

        with database.session(readonly=True) as session:
            urls = PlatformRepository(session).frame_urls(include_demo=self._demo)
        value = frame_ancestors([*self._fixed, *(o for o in map(origin_of, urls) if o)])
        with self._lock:
            if value != self.value:
                log.info("frame-ancestors now %s", value)
            self.value = value
            self.policy = policy_with(value)
        return value

    def policy_for(self, path: str) -> bytes:
        return self.open_policy if path in OPEN_PATHS else self.policy
