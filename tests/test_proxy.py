"""Behind a reverse proxy: X-Forwarded-* believed from trusted proxies only."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from pydantic import ValidationError

from app.config import Settings
from app.core.db import Database
from app.core.proxy import TrustedProxies, forwarded, parse_networks
from app.main import create_app


def _headers(**values: str) -> list[tuple[bytes, bytes]]:
    return [(k.replace("_", "-").encode(), v.encode()) for k, v in values.items()]


TRUSTED = TrustedProxies("10.0.0.0/8, 192.0.2.1, fd00::/8")


class TestWhoIsBelieved:
    def test_an_untrusted_client_cannot_spoof_anything(self) -> None:
        spoof = _headers(
            x_forwarded_for="127.0.0.1", x_forwarded_proto="https", x_forwarded_host="admin.test"
        )
        assert forwarded("203.0.113.5", spoof, TRUSTED) == (None, None, None)
        assert forwarded("203.0.113.5", spoof, TrustedProxies("")) == (None, None, None)
        assert forwarded(None, spoof, TRUSTED) == (None, None, None)

    def test_one_trusted_proxy(self) -> None:
        headers = _headers(
            x_forwarded_for="198.51.100.7",
            x_forwarded_proto="https",
            x_forwarded_host="blend727.sgd.edu.vn",
        )
        assert forwarded("192.0.2.1", headers, TRUSTED) == (
            "198.51.100.7",
            "https",
            "blend727.sgd.edu.vn",
        )

    def test_a_proxy_inside_a_trusted_network(self) -> None:
        headers = _headers(x_forwarded_for="198.51.100.7", x_forwarded_proto="https")
        assert forwarded("10.20.30.40", headers, TRUSTED)[:2] == ("198.51.100.7", "https")
        assert forwarded("11.0.0.1", headers, TRUSTED) == (None, None, None)

    def test_several_hops_stop_at_the_first_untrusted_address_from_the_right(self) -> None:
        # The client wrote "1.1.1.1" itself; the edge proxy appended the client's real address,
        # the inner proxy the edge proxy's.
        headers = _headers(x_forwarded_for="1.1.1.1, 198.51.100.7, 10.0.0.2")
        assert forwarded("10.0.0.3", headers, TRUSTED)[0] == "198.51.100.7"

    def test_headers_over_several_lines_count_as_one_list(self) -> None:
        headers = _headers(x_forwarded_for="1.1.1.1") + _headers(
            x_forwarded_for="198.51.100.7, 10.0.0.2"
        )
        assert forwarded("10.0.0.3", headers, TRUSTED)[0] == "198.51.100.7"

    def test_the_scheme_of_the_clients_hop_when_every_proxy_appended_one(self) -> None:
        headers = _headers(
            x_forwarded_for="198.51.100.7, 10.0.0.2", x_forwarded_proto="https, http"
        )
        assert forwarded("10.0.0.3", headers, TRUSTED)[1] == "https"
        # A spoofed scheme to the left of the client's hop is never read.
        headers = _headers(x_forwarded_for="6.6.6.6, 198.51.100.7", x_forwarded_proto="http,https")
        assert forwarded("10.0.0.3", headers, TRUSTED)[:2] == ("198.51.100.7", "https")

    def test_the_nearest_proxys_scheme_otherwise(self) -> None:
        headers = _headers(x_forwarded_for="198.51.100.7, 10.0.0.2", x_forwarded_proto="https")
        assert forwarded("10.0.0.3", headers, TRUSTED)[1] == "https"

    def test_all_trusted_means_the_leftmost(self) -> None:
        headers = _headers(x_forwarded_for="10.9.9.9, 10.0.0.2")
        assert forwarded("10.0.0.3", headers, TRUSTED)[0] == "10.9.9.9"

    def test_ports_ipv6_and_mapped_addresses(self) -> None:
        headers = _headers(x_forwarded_for="[2001:db8::7]:4711, 198.51.100.7:5000")
        assert forwarded("::ffff:10.0.0.1", headers, TRUSTED)[0] == "198.51.100.7"
        headers = _headers(x_forwarded_for="2001:db8::7, fd00::1")
        assert forwarded("fd00::2", headers, TRUSTED)[0] == "2001:db8::7"

    def test_garbage_stops_the_walk_and_bad_values_are_dropped(self) -> None:
        headers = _headers(
            x_forwarded_for="unknown, 10.0.0.2",
            x_forwarded_proto="gopher",
            x_forwarded_host="evil.test/<script>",
        )
        assert forwarded("10.0.0.3", headers, TRUSTED) == ("10.0.0.2", None, None)

    def test_the_setting_is_checked_at_start_up(self) -> None:
        assert [str(n) for n in parse_networks(" 10.0.0.0/8 ,::1,")] == ["10.0.0.0/8", "::1/128"]
        with pytest.raises(ValidationError, match=r"'proxy\.local' is not an IP address"):
            Settings(trusted_proxies="10.0.0.1, proxy.local")


@pytest.fixture()
def proxied_app(settings: Settings, database: Database) -> Iterator[FastAPI]:
    app = create_app(
        Settings(**{**settings.model_dump(), "trusted_proxies": "10.0.0.0/8"}), database
    )

    @app.get("/_test/whoami")
    def whoami(request: Request) -> dict[str, str | None]:
        return {
            "client": request.client.host if request.client else None,
            "scheme": request.url.scheme,
            "host": request.url.hostname,
        }

    yield app


FORWARDED = {
    "X-Forwarded-For": "198.51.100.7",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "blend727.sgd.edu.vn",
}


class TestTheAppBehindAProxy:
    def test_from_a_trusted_proxy_the_client_and_scheme_are_used(
        self, proxied_app: FastAPI
    ) -> None:
        with TestClient(proxied_app, base_url="http://app:8727", client=("10.1.1.1", 40000)) as c:
            seen = c.get("/_test/whoami", headers=FORWARDED).json()
        assert seen == {"client": "198.51.100.7", "scheme": "https", "host": "blend727.sgd.edu.vn"}

    def test_spoofed_headers_from_an_untrusted_client_are_ignored(
        self, proxied_app: FastAPI
    ) -> None:
        with TestClient(proxied_app, base_url="http://app:8727", client=("203.0.113.9", 1)) as c:
            seen = c.get("/_test/whoami", headers=FORWARDED).json()
        assert seen == {"client": "203.0.113.9", "scheme": "http", "host": "app"}

    def test_without_trusted_proxies_nothing_is_believed(
        self, settings: Settings, database: Database
    ) -> None:
        app = create_app(settings, database)

        @app.get("/_test/whoami")
        def whoami(request: Request) -> dict[str, str | None]:
            return {"client": request.client.host if request.client else None}

        with TestClient(app, base_url="http://app", client=("127.0.0.1", 1)) as c:
            assert c.get("/_test/whoami", headers=FORWARDED).json() == {"client": "127.0.0.1"}


class TestHttpsWarning:
    def test_plain_http_outside_the_demo_is_warned_about(self) -> None:
        warnings = Settings(base_url="http://blend727.sgd.edu.vn").startup_warnings()
        assert any("not https://" in w for w in warnings)
        assert not any(
            "not https://" in w
            for w in Settings(base_url="https://blend727.sgd.edu.vn").startup_warnings()
        )
        assert Settings(base_url="http://127.0.0.1:8727", demo=True).startup_warnings() == []

    def test_the_warning_is_logged_at_start_up(
        self, settings: Settings, database: Database, caplog: pytest.LogCaptureFixture
    ) -> None:
        plain = Settings(**{**settings.model_dump(), "base_url": "http://blend727.sgd.edu.vn"})
        with TestClient(create_app(plain, database)):
            pass
        assert any(
            r.levelname == "WARNING" and "not https://" in r.getMessage() for r in caplog.records
        )
