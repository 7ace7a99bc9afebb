"""Response headers that keep the inbox's pages inert in a hostile world: a strict
Content-Security-Policy (scripts, styles and images from the gateway only, no inline script,
no framing), no MIME sniffing, no referrer to other sites. JSON answers get a policy that
allows nothing."""

from aiohttp import web

from ingest_gateway.ui.assets import PREFIX

UI_PREFIX = "/ui/"
SIGN_IN = "/ui/sign-in"
_PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
_API_POLICY = "default-src 'none'; frame-ancestors 'none'"


def is_public_ui(path: str) -> bool:
    """The inbox's paths open to a browser without a session: sign-in and static files."""
    return path in (SIGN_IN, "/ui") or path.startswith(PREFIX)


async def secure_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: every answer, pages and API alike."""
    page = request.path.startswith(UI_PREFIX)
    response.headers["Content-Security-Policy"] = _PAGE_POLICY if page else _API_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    # same-origin, not no-referrer: under no-referrer a browser sends "Origin: null" with a
    # form, and sign-in could no longer tell its own page from another site's.
    response.headers["Referrer-Policy"] = "same-origin"
    if page and not request.path.startswith(PREFIX):
        # Pages carry the CSRF token and alert data: never cached, never shared.
        response.headers["Cache-Control"] = "no-store"
