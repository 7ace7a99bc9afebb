"""Browser sessions of the analyst inbox: an API key of the analyst scope, presented once at
sign-in, is exchanged for a random session id in an HttpOnly, SameSite=Strict cookie.

Only the id's sha256 is stored (ui_sessions), with the key's name and the session's CSRF
token; the key's scopes are looked up again on every request, so removing a key from
API_KEYS_SHA256 ends its sessions. Every state change made with the cookie must carry the
CSRF token (the X-CSRF-Token header, or the csrf_token field of a form): a synchronizer
token, bound to the session, that another site's page cannot read.
"""

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from aiohttp import web
from psycopg_pool import AsyncConnectionPool

from ingest_gateway.body import read_whole_body
from shared.db import bounded_connection

COOKIE = "jalytics_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# token_urlsafe(32) makes 43 characters of this alphabet; anything else is not one of ours.
_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{43}")

_INSERT = """
INSERT INTO ui_sessions (id_sha256, key_name, csrf_token, created_at, expires_at)
VALUES (%s, %s, %s, %s, %s)
"""
_SELECT = "SELECT key_name, csrf_token FROM ui_sessions WHERE id_sha256 = %s AND expires_at > %s"


@dataclass(frozen=True, slots=True)
class Session:
    key_name: str
    csrf_token: str


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("ascii")).hexdigest()


class SessionStore:
    def __init__(self, pool: AsyncConnectionPool, lifetime: timedelta) -> None:
        self._pool = pool
        self.lifetime = lifetime

    async def open(self, key_name: str, now: datetime) -> tuple[str, Session]:
        """A new session for the key (and expired ones dropped): (cookie value, session)."""
        session_id, session = (
            secrets.token_urlsafe(32),
            Session(key_name, secrets.token_urlsafe(32)),
        )
        # Writes bounded as the other stores' (a silent database: a 503, not a hang); the
        # lookup (find) is a read, bounded by its caller as every read is.
        async with bounded_connection(self._pool) as conn:
            await conn.execute("DELETE FROM ui_sessions WHERE expires_at <= %s", (now,))
            await conn.execute(
                _INSERT,
                (_digest(session_id), key_name, session.csrf_token, now, now + self.lifetime),
            )
        return session_id, session

    async def find(self, session_id: str, now: datetime) -> Session | None:
        if not _SESSION_ID.fullmatch(session_id):
            return None
        async with self._pool.connection() as conn:
            row = await (await conn.execute(_SELECT, (_digest(session_id), now))).fetchone()
        return Session(row[0], row[1]) if row else None

    async def close(self, session_id: str) -> None:
        if _SESSION_ID.fullmatch(session_id):
            async with bounded_connection(self._pool) as conn:
                await conn.execute(
                    "DELETE FROM ui_sessions WHERE id_sha256 = %s", (_digest(session_id),)
                )


def is_https(request: web.Request) -> bool:
    """Whether the browser is on https: directly, or through a TLS-terminating proxy that says
    so. A forged header only makes the cookie stricter (a Secure cookie over http is dropped)."""
    return request.secure or request.headers.get("X-Forwarded-Proto", "").lower() == "https"


def set_cookie(
    response: web.StreamResponse, request: web.Request, session_id: str, max_age: timedelta
) -> None:
    response.set_cookie(
        COOKIE,
        session_id,
        max_age=int(max_age.total_seconds()),
        path="/",
        httponly=True,
        samesite="Strict",
        secure=is_https(request),
    )


def clear_cookie(response: web.StreamResponse, request: web.Request) -> None:
    response.del_cookie(
        COOKIE, path="/", secure=is_https(request), httponly=True, samesite="Strict"
    )


async def form_field(request: web.Request, name: str) -> str | None:
    """A field of a posted form ("" when absent); None when the form cannot be read: bytes
    that are not its charset, a charset Python does not know, a multipart body (aiohttp
    raised UnicodeDecodeError, LookupError or ValueError from post(): a 500)."""
    try:
        form = await request.post()
    except (ValueError, LookupError):
        return None
    return str(form.get(name, ""))


async def presented_csrf_token(request: web.Request) -> str:
    """The token a state change carries: the header (the inbox's scripts), or the form field
    (its plain forms, such as sign-out)."""
    token = request.headers.get(CSRF_HEADER)
    if token is None and request.content_type == "application/x-www-form-urlencoded":
        # Read here, before the middleware that reads every body: bounded the same way, or a
        # session holder's form that stalls would hold its connection forever.
        await read_whole_body(request)
        token = await form_field(request, CSRF_FIELD)
    return token or ""


async def csrf_holds(request: web.Request, session: Session) -> bool:
    if request.method in SAFE_METHODS:
        return True
    presented = await presented_csrf_token(request)
    return hmac.compare_digest(presented.encode(), session.csrf_token.encode())
