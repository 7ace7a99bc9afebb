"""Hostile input against a real gateway process, byte for byte over a raw socket: malformed
header lines (F9), non-UTF-8 header bytes, huge digit strings, nested cursors and dates out
of range at every route. Never a 500; never a secret in an answer or in the log."""

import base64
import json
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import API_KEY, Isolated
from tests.processes import Worker, free_port, running

pytestmark = pytest.mark.e2e

# A second secret: a Bearer value the gateway does not know must not leak either.
OTHER_SECRET = f"bearer-{uuid.uuid4().hex}"
SECRETS = (API_KEY, OTHER_SECRET)
TXN_ID = str(uuid.uuid4())
ROUTES = (
    ("POST", "/transactions"),
    ("POST", "/transactions/batch"),
    ("GET", f"/transactions/{TXN_ID}"),
    ("POST", f"/transactions/{TXN_ID}/reversal"),
    ("GET", "/alerts"),
    ("GET", "/health"),
    ("GET", "/ready"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
)
# Each broke a header line at 37aed69 and had aiohttp quote it, key and all.
MALFORMED_LINES = {
    "trailing CR": b"X-API-Key: %s\r",
    "vertical tab": b"X-API-Key: %s\x0bx",
    "NUL": b"X-API-Key: %s\x00x",
    "obs-fold": b"X-Trace: a\r\n %s",
    "space before the colon": b"X-API-Key : %s",
    "bare LF": b"Authorization: Bearer %s\nX-Other: b",
}
HOSTILE = {
    "RATE_LIMIT_RPS": "100000",
    "RATE_LIMIT_BURST": "100000",
    "GLOBAL_RATE_LIMIT_RPS": "100000",
    "GLOBAL_RATE_LIMIT_BURST": "100000",
    "VERDICT_WAIT_SECONDS": "0",
    "BODY_READ_TIMEOUT_SECONDS": "1",
    "LOG_LEVEL": "debug",
}


@dataclass(frozen=True)
class Answer:
    status: int
    raw: bytes


@dataclass(frozen=True)
class Gateway:
    port: int
    worker: Worker

    def send(self, request: bytes) -> Answer:
        """One raw request on its own connection; the whole answer (the server closes)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
            # No shutdown(SHUT_WR): aiohttp drops a half-closed connection without answering.
            sock.sendall(request)
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        raw = b"".join(chunks)
        assert raw.startswith(b"HTTP/1."), raw[:200]
        return Answer(int(raw.split(b" ", 2)[1]), raw)

    def log(self) -> str:
        return self.worker.log_path.read_text(errors="replace")


@pytest.fixture
def gateway(isolated: Isolated, tmp_path: Path) -> Iterator[Gateway]:
    port = free_port()
    env = isolated.worker_env("gateway") | HOSTILE | {"PORT": str(port)}
    with running("ingest_gateway", env, tmp_path / "gateway.log") as worker:
        worker.wait_healthy(f"http://127.0.0.1:{port}/health")
        yield Gateway(port, worker)


def request(
    method: str, target: bytes, headers: list[bytes], body: bytes = b"", key: bytes | None = None
) -> bytes:
    lines = [b"%s %s HTTP/1.1" % (method.encode(), target), b"Host: gateway"]
    if key is not None:
        lines.append(b"X-API-Key: " + key)
    if body:
        lines += [b"Content-Type: application/json", b"Content-Length: %d" % len(body)]
    lines += [*headers, b"Connection: close"]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def assert_no_secret(text: bytes | str) -> None:
    data = text.encode(errors="replace") if isinstance(text, str) else text
    for secret in SECRETS:
        assert secret.encode() not in data


@pytest.mark.parametrize("where", ["X-API-Key", "Authorization"])
def test_f9_a_malformed_header_line_is_refused_without_echoing_or_logging_the_key(
    gateway: Gateway, where: str
) -> None:
    for form, line in MALFORMED_LINES.items():
        if where == "Authorization":
            line = line.replace(b"X-API-Key:", b"Authorization: Bearer")
            line = line.replace(b"X-API-Key :", b"Authorization : Bearer")
        for secret in SECRETS:
            answer = gateway.send(request("GET", b"/alerts", [line % secret.encode()]))
            assert answer.status == 400, form
            body = answer.raw.split(b"\r\n\r\n", 1)[1]
            assert json.loads(body)["error"] == "malformed HTTP request", form
            assert_no_secret(answer.raw)
    log = gateway.log()
    assert "unparseable HTTP request refused" in log
    assert_no_secret(log)


def header_value() -> st.SearchStrategy[bytes]:
    """Any bytes a header value may carry on the wire, and some it may not."""
    secret = st.sampled_from([s.encode() for s in SECRETS])
    return st.one_of(
        st.binary(max_size=64),
        st.builds(lambda a, s, b: a + s + b, st.binary(max_size=8), secret, st.binary(max_size=8)),
        st.text(max_size=32).map(lambda t: t.encode("utf-8")),
    )


def nested_cursor() -> st.SearchStrategy[bytes]:
    documents = st.one_of(
        st.integers(1, 6000).map(lambda n: "[" * n),
        st.integers(1, 2000).map(lambda n: '{"a":' * n),
        st.integers(1, 6000).map(lambda n: '{"t": "' + "9" * n + '", "id": 1}'),
        st.just(json.dumps({"t": "0001-01-01T00:00:00+14:00", "id": TXN_ID})),
    )
    return documents.map(lambda d: base64.urlsafe_b64encode(d.encode()).rstrip(b"="))


def out_of_range_date() -> st.SearchStrategy[str]:
    offsets = st.sampled_from(["+14:00", "-14:00", "Z", "+00:00"])
    years = st.sampled_from(["0001", "1969", "2100", "9999"])
    return st.builds(lambda y, o: f"{y}-12-31T23:59:59{o}", years, offsets)


def huge_digits() -> st.SearchStrategy[str]:
    return st.integers(300, 6000).map(lambda n: "9" * n)


def query_value() -> st.SearchStrategy[bytes]:
    return st.one_of(
        huge_digits().map(str.encode),
        nested_cursor(),
        out_of_range_date().map(lambda d: d.replace("+", "%2B").encode()),
        st.sampled_from([b"%C2%B2", b"%FF%FE", b"%00", b"\xd9\xa3", b"-1", b"0"]),
    )


def body_value() -> st.SearchStrategy[bytes]:
    good = {"amount": "10", "category": "food", "merchant": "Cafe"}
    dated = out_of_range_date().map(lambda d: json.dumps({**good, "transaction_date": d}).encode())
    digits = huge_digits().map(
        lambda n: b'{"amount": %s, "category": "a", "merchant": "b"}' % n.encode()
    )
    batch = dated.map(lambda d: b'{"transactions": [%s]}' % d)
    return st.one_of(dated, digits, batch, st.binary(max_size=200))


SUITE = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@SUITE
@given(
    route=st.sampled_from(ROUTES),
    name=st.sampled_from(
        [b"X-API-Key", b"Authorization", b"Idempotency-Key", b"Content-Type", b"Prefer"]
    ),
    value=header_value(),
)
def test_hostile_header_bytes_at_every_route(
    gateway: Gateway, route: tuple[str, str], name: bytes, value: bytes
) -> None:
    method, path = route
    if name == b"Authorization":
        value = b"Bearer " + value
    key = None if name in (b"X-API-Key", b"Authorization") else API_KEY.encode()
    answer = gateway.send(request(method, path.encode(), [name + b": " + value], key=key))
    assert answer.status < 500
    assert_no_secret(answer.raw)
    assert_no_secret(gateway.log())


@settings(SUITE, max_examples=80)
@given(
    # Every route, and the one that reads a query (GET /alerts) more often.
    route=st.sampled_from(ROUTES + (("GET", "/alerts"),) * 5),
    parameter=st.sampled_from([b"limit", b"cursor", b"since", b"until", b"wait", b"category"]),
    value=query_value(),
)
def test_hostile_query_strings_at_every_route(
    gateway: Gateway, route: tuple[str, str], parameter: bytes, value: bytes
) -> None:
    method, path = route
    target = path.encode() + b"?" + parameter + b"=" + value
    answer = gateway.send(request(method, target, [], key=API_KEY.encode()))
    assert answer.status < 500
    assert_no_secret(answer.raw)
    assert_no_secret(gateway.log())


@SUITE
@given(route=st.sampled_from([r for r in ROUTES if r[0] == "POST"]), body=body_value())
def test_hostile_bodies_at_every_route(
    gateway: Gateway, route: tuple[str, str], body: bytes
) -> None:
    method, path = route
    headers = [b"Idempotency-Key: k-" + uuid.uuid4().hex.encode()]
    answer = gateway.send(request(method, path.encode(), headers, body, key=API_KEY.encode()))
    assert answer.status < 500
    assert_no_secret(answer.raw)
    assert_no_secret(gateway.log())


@SUITE
@given(
    route=st.sampled_from(ROUTES),
    form=st.sampled_from(sorted(MALFORMED_LINES)),
    secret=st.sampled_from(SECRETS),
)
def test_malformed_header_lines_at_every_route(
    gateway: Gateway, route: tuple[str, str], form: str, secret: str
) -> None:
    method, path = route
    line = MALFORMED_LINES[form] % secret.encode()
    answer = gateway.send(request(method, path.encode(), [line], key=API_KEY.encode()))
    assert answer.status == 400
    assert_no_secret(answer.raw)
    assert_no_secret(gateway.log())
