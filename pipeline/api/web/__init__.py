"""The web page at `/ui/`: static HTML, CSS and JavaScript committed in `static/` (no build
step, no CDN), talking to the JSON API with the signed-in key.

Served with a strict Content-Security-Policy: scripts, styles and requests only from this
origin, no inline script or style, no framing, no forms posting elsewhere. The page never
turns text into HTML (see app.js), and it holds the key in the tab and sends it as a Bearer
header: no cookie exists for another site to ride on (CSRF).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, RedirectResponse, Response

UI_URL = "/ui/"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}
# The only files served: a fixed list, so no request path ever reaches the file system.
ASSETS = {
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}


def _static() -> Path:
    return Path(str(resources.files(__package__).joinpath("static")))


def install_ui(app: FastAPI) -> None:
    static = _static()

    @app.get("/ui", include_in_schema=False)
    async def ui_redirect() -> RedirectResponse:
        return RedirectResponse(UI_URL, status_code=308)

    @app.get(UI_URL, include_in_schema=False)
    async def ui_page() -> FileResponse:
        return FileResponse(
            static / "index.html",
            media_type="text/html; charset=utf-8",
            headers={**SECURITY_HEADERS, "Cache-Control": "no-store"},
        )

    @app.get("/ui/static/{name}", include_in_schema=False)
    async def ui_asset(name: str) -> Response:
        if name not in ASSETS:
            return Response(status_code=404, headers=SECURITY_HEADERS)
        return FileResponse(
            static / name,
            media_type=ASSETS[name],
            headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"},
        )
