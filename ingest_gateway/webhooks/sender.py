"""One HTTP attempt at delivering an event: signed, timed out, never redirected, and only to
addresses the egress guard allows (checked on the addresses the connection really uses)."""

import socket
import time
from datetime import UTC, datetime

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from ingest_gateway.webhooks.attempts import AttemptResult, from_exception, from_status
from ingest_gateway.webhooks.backoff import retry_after_seconds
from ingest_gateway.webhooks.egress import (
    EgressRefused,
    check_addresses,
    literal_address,
    parse_destination,
)
from ingest_gateway.webhooks.matching import Subscription
from ingest_gateway.webhooks.signing import signature_header
from schemas.webhook import EVENT_ID_HEADER, SIGNATURE_HEADER

USER_AGENT = "Jalytics-Webhooks/1"
MAX_ANSWER_BYTES = 64 * 1024


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver, refusing names that resolve to an internal address: the check and
    the connection use the same answer, so DNS rebinding cannot slip in between."""

    def __init__(self, allow_private: bool) -> None:
        self._inner = DefaultResolver()
        self._allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        addresses = [literal_address(result["host"]) for result in results]
        check_addresses([a for a in addresses if a is not None], self._allow_private)
        return results

    async def close(self) -> None:
        await self._inner.close()


def guarded_session(allow_private: bool, timeout_seconds: float) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(
        resolver=GuardedResolver(allow_private), use_dns_cache=False, limit=100
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=timeout_seconds),
        # Never read HTTP(S)_PROXY: a proxy would resolve the host where we cannot check it.
        trust_env=False,
        headers={"User-Agent": USER_AGENT},
    )


class Sender:
    def __init__(self, session: aiohttp.ClientSession, allow_private: bool) -> None:
        self._session = session
        self._allow_private = allow_private

    async def attempt(
        self, subscription: Subscription, event_id: str, body: bytes
    ) -> AttemptResult:
        headers = {
            "Content-Type": "application/json",
            EVENT_ID_HEADER: event_id,
            SIGNATURE_HEADER: signature_header(subscription.secret, int(time.time()), body),
        }
        try:
            self._check_literal_host(subscription.url)
            async with self._session.post(
                subscription.url, data=body, headers=headers, allow_redirects=False
            ) as response:
                # Enough of the answer to free the connection; a receiver's huge body is not
                # read into memory (what is left closes the connection instead).
                await response.content.read(MAX_ANSWER_BYTES)
                wait = retry_after_seconds(response.headers.get("Retry-After"), datetime.now(UTC))
                return from_status(response.status, wait)
        except EgressRefused as exc:
            return from_exception(exc, refused=True)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            return from_exception(exc, refused=False)

    def _check_literal_host(self, url: str) -> None:
        """aiohttp calls no resolver for an IP literal: check it here."""
        destination = parse_destination(url)
        if (address := literal_address(destination.host)) is not None:
            check_addresses([address], self._allow_private)
