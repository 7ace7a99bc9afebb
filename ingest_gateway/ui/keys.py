"""What the inbox's handlers find on the application and the request (aiohttp keys)."""

from aiohttp import web

from ingest_gateway.rate_limit import RateLimiter
from ingest_gateway.ui.assets import Assets
from ingest_gateway.ui.queries import UiReads
from ingest_gateway.ui.sessions import Session, SessionStore

SESSIONS = web.AppKey("ui_sessions", SessionStore)
ASSETS = web.AppKey("ui_assets", Assets)
# Set by the authentication middleware when the request came with a session cookie.
SESSION = web.RequestKey("ui_session", Session)
READS = web.AppKey("ui_reads", UiReads)
# Sign-in attempts, a bucket per client address.
SIGN_IN_LIMITER = web.AppKey("ui_sign_in_limiter", RateLimiter)
