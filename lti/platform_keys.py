"""The platforms' public keys, cached as parsed key objects.

pylti1p3 re-converts the JWKS to PEM and PyJWT re-parses it on every launch, and it never
refetches a JWKS when a platform rotates its key. Here keys are parsed once per ``kid``;
an unknown ``kid`` triggers one refetch (at most once per ``_MIN_REFETCH_SECONDS`` per URL,
so a flood of forged tokens cannot make us hammer the platform).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import jwt
import requests

from lti.errors import LaunchRefused
from lti.http import read_limited

_MIN_REFETCH_SECONDS = 10.0


@dataclass
class _Entry:
    keys: dict[str, jwt.PyJWK] = field(default_factory=dict)
    fetched_at: float = float("-inf")  # last successful fetch
    failed_at: float = float("-inf")  # last failed fetch
    unknown_refetch_at: float = float("-inf")  # last refetch caused by an unknown kid
    last_error: str | None = None  # why the last fetch failed; None after a success


class PlatformKeyCache:
    def __init__(self, http: requests.Session, ttl_seconds: float) -> None:
        self._http = http
        self._ttl = ttl_seconds
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def prime(self, url: str, jwks: dict[str, Any]) -> None:
        """Install a key set known locally (the built-in demo platform), as if fetched."""
        keys = {
            str(item["kid"]): jwt.PyJWK(item, algorithm=item.get("alg") or "RS256")
            for item in jwks.get("keys", [])
            if isinstance(item, dict) and item.get("kid")
        }
        with self._lock:
            self._entries[url] = _Entry(keys=keys, fetched_at=float("inf"))

    def _fetch(self, url: str) -> dict[str, jwt.PyJWK]:
        try:
            response = self._http.get(url, stream=True)
            body = read_limited(response)
            if response.status_code != 200:
                raise LaunchRefused(
                    "keys_unavailable", f"JWKS {url} answered HTTP {response.status_code}"
                )
            data: Any = json.loads(body)
        except LaunchRefused:
            raise
        except (requests.RequestException, ValueError) as exc:
            raise LaunchRefused("keys_unavailable", f"JWKS {url}: {exc}") from exc
        if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
            raise LaunchRefused("keys_unavailable", f"JWKS {url} is not a key set")
        keys: dict[str, jwt.PyJWK] = {}
        for item in data["keys"]:
            if not isinstance(item, dict) or item.get("kty") != "RSA" or not item.get("kid"):
                continue
            if item.get("use", "sig") != "sig":
                continue
            try:
                keys[str(item["kid"])] = jwt.PyJWK(item, algorithm=item.get("alg") or "RS256")
            except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError):
                continue
        return keys

    def get(self, url: str, kid: str) -> jwt.PyJWK:
        """The key ``kid`` of the JWKS at ``url``.

        A stale set is refetched; a fresh set is refetched for an unknown ``kid`` at most once
        per ``_MIN_REFETCH_SECONDS`` (a platform rotating its key is picked up at once, a flood
        of forged kids costs one request); after a failed fetch nothing is fetched for
        ``_MIN_REFETCH_SECONDS``, and known keys stay usable while the platform is down.
        """
        now = time.monotonic()
        entry = self._entries.get(url)
        if entry is not None and kid in entry.keys and now - entry.fetched_at < self._ttl:
            return entry.keys[kid]
        with self._lock:
            entry = self._entries.setdefault(url, _Entry())
            if now - entry.failed_at < _MIN_REFETCH_SECONDS:
                fetch = False
            elif now - entry.fetched_at >= self._ttl:
                fetch = True
            elif kid not in entry.keys:
                fetch = now - entry.unknown_refetch_at >= _MIN_REFETCH_SECONDS
                if fetch:
                    entry.unknown_refetch_at = now
            else:
                fetch = False
            if fetch:
                try:
                    entry.keys = self._fetch(url)
                    entry.fetched_at = now
                    entry.last_error = None
                    if kid not in entry.keys:
                        # This fetch already answered "unknown kid": it counts as the refetch.
                        entry.unknown_refetch_at = now
                except LaunchRefused as exc:
                    entry.failed_at = now
                    entry.last_error = exc.log_detail
            key = entry.keys.get(kid)
            last_error = entry.last_error
        if key is not None:
            return key
        if last_error is not None:
            raise LaunchRefused("keys_unavailable", last_error)
        raise LaunchRefused("unknown_key", f"kid {kid!r} not in JWKS {url}")
