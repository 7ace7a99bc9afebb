"""Reading a request's whole body within BODY_READ_TIMEOUT_SECONDS and MAX_BODY_BYTES."""

import asyncio

from aiohttp import web

from ingest_gateway.context import METRICS, SETTINGS
from ingest_gateway.errors import error_response


class UnreadableBody(Exception):
    """The body was not read: too large, too slow or undecodable. The answer closes the
    connection (`reject`): the rest of such a body is not worth waiting for."""

    def __init__(self, status: int, error: str, reason: str) -> None:
        super().__init__(error)
        self.status, self.error, self.reason = status, error, reason


async def read_whole_body(request: web.Request) -> None:
    """Read the body into aiohttp's cache (handlers, forms and the CSRF check then get it
    from there), or raise UnreadableBody: a body that stalls must not hold its connection
    forever, wherever it is first read."""
    if not request.body_exists:
        return
    if (request.content_length or 0) > request.app[SETTINGS].max_body_bytes:
        # Said in its headers: no need to wait for a body that would be refused (it was a 408
        # after BODY_READ_TIMEOUT_SECONDS when the bytes never came).
        raise UnreadableBody(413, "body too large", "too_large")
    try:
        if request.content.is_eof():
            # All of it has arrived (nearly every body: it came with the headers): reading it
            # cannot stall, and a timer per request would cost more than the rest of this.
            await request.read()
        else:
            async with asyncio.timeout(request.app[SETTINGS].body_read_timeout_seconds):
                await request.read()
    except TimeoutError:
        raise UnreadableBody(408, "request body not received in time", "body_timeout") from None
    except web.HTTPRequestEntityTooLarge:
        # A chunked body (no length said) that grew past MAX_BODY_BYTES: closed like the rest,
        # or aiohttp would read on for up to 10 s.
        raise UnreadableBody(413, "body too large", "too_large") from None
    except web.RequestPayloadError:
        # e.g. a Content-Encoding: gzip body that is not gzip (it answered 500).
        raise UnreadableBody(
            400, "request body could not be decoded (its Content-Encoding?)", "unreadable_body"
        ) from None


async def answer_and_close(request: web.Request, refused: UnreadableBody) -> web.Response:
    """Send the answer, then close at once: aiohttp would otherwise linger up to 10 s more,
    waiting for the rest of a body that is not coming."""
    request.app[METRICS].rejected.labels(reason=refused.reason).inc()
    response = error_response(refused.status, refused.error)
    response.force_close()
    await response.prepare(request)
    await response.write_eof()
    request.protocol.force_close()  # the answer is flushed before the socket closes
    return response
