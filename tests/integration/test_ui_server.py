"""The analyst inbox's server side on the real database: sessions, CSRF, headers, escaping,
assets. (tests/e2e/test_ui_browser.py drives the same pages in Chromium.)"""

import asyncio
import hashlib
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from ingest_gateway.app import create_app
from ingest_gateway.settings import GatewaySettings
from schemas.rarity import probability_of
from tests.conftest import SCOPED_KEYS, Isolated
from tests.ui_seed import TAIL, seed_scope

pytestmark = pytest.mark.integration
HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(1)>'


@pytest.fixture
async def browser(isolated: Isolated) -> AsyncIterator[TestClient[Any, Any]]:
    """A client with a cookie jar and no API key: what a browser sends."""
    settings = isolated.settings(GatewaySettings, rate_limit_rps=1000, rate_limit_burst=1000)
    async with TestClient(TestServer(create_app(settings, CollectorRegistry()))) as client:
        yield client


async def sign_in(client: TestClient[Any, Any], key: str) -> Any:
    return await client.post("/ui/sign-in", data={"api_key": key}, allow_redirects=False)


def csrf_token(html: str) -> str:
    match = re.search(r'<meta name="csrf-token" content="([^"]+)">', html)
    assert match is not None
    return match.group(1)


async def test_an_analyst_key_gets_a_session_cookie_stored_only_hashed(
    browser: TestClient[Any, Any], db: Any
) -> None:
    assert (await browser.get("/ui/", allow_redirects=False)).headers["Location"] == "/ui/sign-in"
    response = await sign_in(browser, SCOPED_KEYS["analyst"])
    assert response.status == 303 and response.headers["Location"] == "/ui/"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    session_id = response.cookies["jalytics_session"].value
    (stored,) = db.execute("SELECT id_sha256, key_name, expires_at > now() FROM ui_sessions")
    assert stored == (hashlib.sha256(session_id.encode()).hexdigest(), "tests-analyst", True)
    assert (await browser.get("/ui/")).status == 200
    again = await sign_in(browser, SCOPED_KEYS["analyst"])
    assert again.cookies["jalytics_session"].value != session_id
    assert db.execute("SELECT count(*) FROM ui_sessions").fetchone()[0] == 1


async def test_an_expired_session_or_a_removed_key_signs_nobody_in(
    browser: TestClient[Any, Any], db: Any
) -> None:
    await sign_in(browser, SCOPED_KEYS["analyst"])
    assert (await browser.get("/ui/", allow_redirects=False)).status == 200
    db.execute("UPDATE ui_sessions SET expires_at = now() - interval '1 second'")
    assert (await browser.get("/ui/", allow_redirects=False)).status == 303
    await sign_in(browser, SCOPED_KEYS["analyst"])
    db.execute("UPDATE ui_sessions SET key_name = 'a-key-no-longer-configured'")
    assert (await browser.get("/ui/", allow_redirects=False)).status == 303


@pytest.mark.parametrize(("key", "status"), [("ingest", 403), ("read", 403), ("wrong", 401)])
async def test_a_key_without_the_analyst_scope_cannot_sign_in(
    browser: TestClient[Any, Any], db: Any, key: str, status: int
) -> None:
    response = await sign_in(browser, SCOPED_KEYS.get(key, "not-a-key-at-all"))
    assert response.status == status
    assert "Set-Cookie" not in response.headers
    assert db.execute("SELECT count(*) FROM ui_sessions").fetchone()[0] == 0
    assert (await browser.get("/ui/", allow_redirects=False)).status == 303


async def test_sign_in_attempts_are_limited_per_client_address(isolated: Isolated, db: Any) -> None:
    """The form is open to anyone: past UI_SIGN_IN_PER_MINUTE attempts from one address, a
    429 with Retry-After, even for the right key, and no session."""
    settings = isolated.settings(GatewaySettings, ui_sign_in_per_minute=3)
    async with TestClient(TestServer(create_app(settings, CollectorRegistry()))) as client:
        for _ in range(3):
            assert (await sign_in(client, "not-a-key-at-all")).status == 401
        limited = await sign_in(client, SCOPED_KEYS["analyst"])
        assert "Too many sign-in attempts" in await limited.text()
    assert limited.status == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 20
    assert db.execute("SELECT count(*) FROM ui_sessions").fetchone()[0] == 0


async def test_an_idempotency_key_on_an_open_path_is_ignored_not_a_500(
    browser: TestClient[Any, Any],
) -> None:
    """Idempotency keys are kept per caller; the sign-in form and the probes have none."""
    headers = {"Idempotency-Key": "k-1"}
    signed_in = await browser.post(
        "/ui/sign-in",
        data={"api_key": SCOPED_KEYS["analyst"]},
        headers=headers,
        allow_redirects=False,
    )
    assert signed_in.status == 303
    assert (await browser.post("/health", headers=headers)).status == 405


@pytest.mark.parametrize(
    ("headers", "status", "secure"),
    [
        ({"Origin": "https://evil.example"}, 401, False),  # login CSRF from another site
        ({"Origin": "null"}, 401, False),
        ({}, 303, False),
        # Behind a TLS-terminating proxy: the browser's https origin, the proxy's header.
        ({"Origin": "https://{host}", "X-Forwarded-Proto": "https"}, 303, True),
        ({"Origin": "https://a.example", "X-Forwarded-Host": "a.example"}, 303, False),
    ],
)
async def test_sign_in_checks_the_origin_host_and_marks_the_cookie_secure_behind_tls(
    browser: TestClient[Any, Any], headers: dict[str, str], status: int, secure: bool
) -> None:
    host = f"{browser.host}:{browser.port}"
    sent = {name: value.replace("{host}", host) for name, value in headers.items()}
    response = await browser.post(
        "/ui/sign-in",
        data={"api_key": SCOPED_KEYS["analyst"]},
        headers=sent,
        allow_redirects=False,
    )
    assert response.status == status
    cookie = response.headers.get("Set-Cookie", "")
    assert ("Secure" in cookie) is secure and (bool(cookie) is (status == 303))


async def test_a_state_change_without_the_csrf_token_is_refused(
    browser: TestClient[Any, Any], db: Any
) -> None:
    await sign_in(browser, SCOPED_KEYS["analyst"])
    token = csrf_token(await (await browser.get("/ui/")).text())
    refused = await browser.post("/ui/sign-out", data={}, allow_redirects=False)
    assert refused.status == 403 and "CSRF" in (await refused.json())["error"]
    forged = await browser.post("/ui/sign-out", data={"csrf_token": "x" * 43})
    assert forged.status == 403
    (alert_id,) = seed_scope(db, "Cafe", "food", [300.0])
    patch = await browser.patch(f"/alerts/{alert_id}", json={"status": "acknowledged"})
    assert patch.status == 403  # the JSON API, called with the cookie alone
    assert db.execute("SELECT count(*) FROM ui_sessions").fetchone()[0] == 1

    signed_out = await browser.post(
        "/ui/sign-out", data={"csrf_token": token}, allow_redirects=False
    )
    assert signed_out.status == 303 and signed_out.headers["Location"] == "/ui/sign-in"
    assert db.execute("SELECT count(*) FROM ui_sessions").fetchone()[0] == 0
    assert (await browser.get("/ui/", allow_redirects=False)).status == 303


UNREADABLE_FORMS = [
    (b"api_key=\xff\xfe", "application/x-www-form-urlencoded"),
    (b"api_key=x", "application/x-www-form-urlencoded; charset=utf-16"),
    (b"api_key=x", "application/x-www-form-urlencoded; charset=no-such-charset"),
    (
        b'--b\r\nContent-Disposition: form-data; name="api_key"\r\n\r\nx\r\n--b--\r\n',
        "multipart/form-data; boundary=b",
    ),
]


@pytest.mark.parametrize(("body", "content_type"), UNREADABLE_FORMS)
async def test_a_form_that_cannot_be_read_is_a_4xx_saying_so(
    browser: TestClient[Any, Any], db: Any, body: bytes, content_type: str
) -> None:
    # aiohttp's post() raised UnicodeDecodeError, LookupError or ValueError: a 500.
    headers = {"Content-Type": content_type}
    answer = await browser.post("/ui/sign-in", data=body, headers=headers)
    assert answer.status == 400
    assert "The form could not be read" in await answer.text()
    await sign_in(browser, SCOPED_KEYS["analyst"])
    refused = await browser.post("/ui/sign-out", data=body, headers=headers)
    assert refused.status == 403 and "CSRF" in (await refused.json())["error"]
    assert db.execute("SELECT count(*) FROM ui_sessions").fetchone()[0] == 1


async def test_pages_are_sent_with_a_strict_policy_and_render_data_as_text(
    browser: TestClient[Any, Any], db: Any
) -> None:
    (alert_id,) = seed_scope(db, HOSTILE, "\u202egnp.exe", [250.0])
    await sign_in(browser, SCOPED_KEYS["analyst"])
    for path in ("/ui/", f"/ui/alerts/{alert_id}", "/ui/overview"):
        response = await browser.get(path)
        assert response.status == 200, path
        policy = response.headers["Content-Security-Policy"]
        assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert "unsafe-inline" not in policy
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Cache-Control"] == "no-store"
        html = await response.text()
        assert "<script>alert(1)" not in html and "<img src=x" not in html, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, path
        assert re.findall(r"<script[^>]*>", html) == [
            re.search(r'<script src="/ui/static/app\.[0-9a-f]{12}\.js" defer>', html).group(0)  # type: ignore[union-attr]
        ]


async def test_assets_have_hashed_names_and_cache_headers(browser: TestClient[Any, Any]) -> None:
    html = await (await browser.get("/ui/sign-in")).text()
    (css,) = re.findall(r'href="(/ui/static/app\.[0-9a-f]{12}\.css)"', html)
    response = await browser.get(css)
    assert response.status == 200 and response.content_type == "text/css"
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    again = await browser.get(css, headers={"If-None-Match": response.headers["ETag"]})
    assert again.status == 304
    assert (await browser.get("/ui/static/app.css")).status == 404


async def test_a_session_holders_form_that_stalls_gets_408_and_the_connection_closed(
    isolated: Isolated,
) -> None:
    # The CSRF check reads a form's token before the middleware that bounds every body read:
    # with a valid session, a form body promised and never sent held its connection forever.
    settings = isolated.settings(
        GatewaySettings, rate_limit_rps=1000, rate_limit_burst=1000, body_read_timeout_seconds=0.5
    )
    async with TestClient(TestServer(create_app(settings, CollectorRegistry()))) as client:
        signed_in = await sign_in(client, SCOPED_KEYS["analyst"])
        session_id = signed_in.cookies["jalytics_session"].value
        reader, writer = await asyncio.open_connection(client.host, client.port)
        writer.write(
            "POST /ui/sign-out HTTP/1.1\r\nHost: x\r\n"
            f"Cookie: jalytics_session={session_id}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n"
            "csrf_token=".encode()
        )
        await writer.drain()
        started = time.monotonic()
        answer = await asyncio.wait_for(reader.read(), timeout=10)  # read() ends at close
        writer.close()
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert b"request body not received in time" in answer
    assert time.monotonic() - started < 3


async def test_the_alert_page_names_the_day_the_baselines_window_ends(
    browser: TestClient[Any, Any], db: Any
) -> None:
    """A baseline computed today over a history replayed after the fact ends on the history's
    last day (`window_end`); one of the steady state, on its computed_at day (UTC)."""
    (steady,) = seed_scope(db, "Steady", "books", [250.0])
    (replayed,) = seed_scope(db, "Replayed", "books", [250.0], window_end="2026-11-20")
    await sign_in(browser, SCOPED_KEYS["analyst"])
    html = await (await browser.get(f"/ui/alerts/{replayed}")).text()
    assert "240 transactions over the 30 days to 2026-11-20;" in html
    html = await (await browser.get(f"/ui/alerts/{steady}")).text()
    today = db.execute("SELECT (now() AT TIME ZONE 'UTC')::date::text").fetchone()[0]
    assert f"240 transactions over the 30 days to {today};" in html


async def test_the_alert_page_states_the_tail_estimate_and_a_cap_by_the_merchants_peers(
    browser: TestClient[Any, Any], db: Any
) -> None:
    """The tail that gave p (how many amounts it covers, past which amount, its shape) and,
    where the category's peers capped the merchant's shape, the shape its own amounts read."""
    (own,) = seed_scope(db, "Own tail", "books", [250.0])
    capped_tail = {**TAIL, "shape": 0.12, "uncapped_shape": 0.61}
    (capped,) = seed_scope(db, "Capped tail", "books", [250.0], tail=capped_tail)
    await sign_in(browser, SCOPED_KEYS["analyst"])
    html = await (await browser.get(f"/ui/alerts/{own}")).text()
    assert "the top 1 % of amounts, past 80.00 at the scope's usual level, fitted as a" in html
    assert "generalised Pareto tail of shape 0.10" in html
    # The seeded alert's z of 4.1 is the z-equivalent of its p, 1 in ~48,000: two figures.
    assert round(1 / probability_of(4.1), -3) == 48_000
    assert "as rare as 1 in 48,000 of the scope's transactions" in html
    assert "capped" not in html
    html = await (await browser.get(f"/ui/alerts/{capped}")).text()
    assert "shape 0.12: its own amounts read 0.61, heavier than its category's" in html


async def test_the_alert_page_reads_a_price_tops_tail_and_a_far_p_plainly(
    browser: TestClient[Any, Any], db: Any
) -> None:
    """A tail past a top price is the fixed-price rule's, not a fitted one; a p beyond 1 in
    a billion is not printed to its last of 300 digits."""
    priced = {**TAIL, "top_price": 79.2, "shape": 0.5}
    (alert,) = seed_scope(db, "Toll road", "tolls", [250.0], tail=priced)
    db.execute("UPDATE alerts SET z_score = 37 WHERE id = %s", (alert,))
    await sign_in(browser, SCOPED_KEYS["analyst"])
    html = await (await browser.get(f"/ui/alerts/{alert}")).text()
    assert "past its top price, 79.20, an amount reads as the fixed-price rule" in html
    assert "generalised Pareto" not in html
    assert "rarer than 1 in a billion of the scope's transactions" in html
