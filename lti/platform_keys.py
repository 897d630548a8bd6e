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
    fetched_at: float = 0.0
    attempted_at: float = 0.0


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
            self._entries[url] = _Entry(keys=keys, fetched_at=float("inf"), attempted_at=0.0)

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
        now = time.monotonic()
        entry = self._entries.get(url)
        if entry is not None and now - entry.fetched_at < self._ttl and kid in entry.keys:
            return entry.keys[kid]
        with self._lock:
            entry = self._entries.setdefault(url, _Entry())
            stale = now - entry.fetched_at >= self._ttl
            unknown = kid not in entry.keys
            recently_tried = now - entry.attempted_at < _MIN_REFETCH_SECONDS
            if (stale or unknown) and not (recently_tried and not stale):
                entry.attempted_at = now
                try:
                    entry.keys = self._fetch(url)
                    entry.fetched_at = now
                except LaunchRefused:
                    if not entry.keys or unknown:
                        raise
                    # A known key stays usable while the platform's JWKS is briefly down.
            key = entry.keys.get(kid)
        if key is None:
            raise LaunchRefused("unknown_key", f"kid {kid!r} not in JWKS {url}")
        return key
