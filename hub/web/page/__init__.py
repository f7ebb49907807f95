"""The fleet page: one HTML page, its script and its stylesheet, served by the hub at ``/``.

No framework, no CDN, no build step. The page reads the JSON API for its first render and the live
feed (``GET /api/v1/events``) for updates, so it shows nothing the API does not. The files are read
once when the routes are added and served from memory. The Content-Security-Policy allows only this
origin's script and style (no inline code), a second line of defence behind the script's rule of
inserting data into the DOM as text only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib.resources import files

from aiohttp import web

from hub.web.feed import Feed

ASSETS = {
    "/": ("index.html", "text/html"),
    "/page/app.js": ("app.js", "text/javascript"),
    "/page/charts.js": ("charts.js", "text/javascript"),
    "/page/style.css": ("style.css", "text/css"),
}

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _asset(body: bytes, content_type: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type=content_type, charset="utf-8", headers=HEADERS)

    return handler


def add_page(app: web.Application, feed: Feed) -> None:
    """Serve the page and the live feed from ``app``, and end open streams when it shuts down."""
    here = files(__name__)
    for path, (name, content_type) in ASSETS.items():
        app.router.add_get(path, _asset((here / name).read_bytes(), content_type))
    app.router.add_get("/api/v1/events", feed.stream)
    app.on_shutdown.append(feed.on_shutdown)
