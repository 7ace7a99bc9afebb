"""The inbox's static files, served by the gateway under content-hashed names
(`app.3f2a9c1b.css`): a page always names the current file, so a browser may keep any file
for a year without asking again. No CDN: the gateway is all a browser needs."""

import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

STATIC_DIR = Path(__file__).with_name("static")
PREFIX = "/ui/static/"
_IMMUTABLE = "public, max-age=31536000, immutable"


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


class Assets:
    def __init__(self, directory: Path = STATIC_DIR) -> None:
        self._by_name: dict[str, str] = {}
        self._by_hashed: dict[str, Asset] = {}
        for path in sorted(directory.iterdir()):
            body = path.read_bytes()
            digest = hashlib.sha256(body).hexdigest()[:12]
            hashed = f"{path.stem}.{digest}{path.suffix}"
            content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            self._by_name[path.name] = PREFIX + hashed
            self._by_hashed[hashed] = Asset(body, content_type, f'"{digest}"')

    def url(self, name: str) -> str:
        """The hashed URL of a file of static/ (a KeyError names a missing file at once)."""
        return self._by_name[name]

    def response(self, request: web.Request, hashed: str) -> web.Response:
        asset = self._by_hashed.get(hashed)
        if asset is None:
            raise web.HTTPNotFound()
        headers = {"Cache-Control": _IMMUTABLE, "ETag": asset.etag}
        if request.headers.get("If-None-Match") == asset.etag:
            return web.Response(status=304, headers=headers)
        charset = "utf-8" if asset.content_type.startswith("text/") else None
        return web.Response(
            body=asset.body, content_type=asset.content_type, charset=charset, headers=headers
        )
