"""Outgoing HTTP for pylti1p3, which uses ``requests`` with no timeout unless given a session.

A platform that hangs must never hang a worker thread: every request gets a connect and a
read timeout, and responses are capped in size when read through ``read_limited``.
"""

from __future__ import annotations

from typing import Any

import requests
from requests.adapters import HTTPAdapter

USER_AGENT = "blend727 (LTI 1.3 tool)"
MAX_RESPONSE_BYTES = 1024 * 1024


class _TimeoutAdapter(HTTPAdapter):
    def __init__(self, timeout: float, **kwargs: Any) -> None:
        self._timeout = timeout
        super().__init__(**kwargs)

    def send(self, request: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = (min(self._timeout, 3.0), self._timeout)
        return super().send(request, **kwargs)


def build_session(timeout: float) -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    adapter = _TimeoutAdapter(timeout, pool_connections=8, pool_maxsize=32, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def read_limited(response: requests.Response, limit: int = MAX_RESPONSE_BYTES) -> bytes:
    """The body, refusing anything larger than ``limit`` (a JWKS is a few kilobytes)."""
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(chunk_size=16384):
        size += len(chunk)
        if size > limit:
            raise ValueError(f"response larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
