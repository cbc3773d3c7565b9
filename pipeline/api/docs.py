"""Swagger UI at `/docs`, served from the fastapi-offline package's copy of Swagger UI 5
instead of FastAPI's CDN links, which fail on an offline server and tell a third party about
every docs visit. Swagger UI 5 reads FastAPI's OpenAPI 3.1 document as it is."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_URL = "/docs"
ASSETS_URL = "/docs/assets"


def install_docs(app: FastAPI) -> None:
    """Mount the Swagger UI assets and add `/docs`; the app must be built with `docs_url=None`
    and `redoc_url=None` (one documentation page is enough, and it must not use a CDN)."""
    assets = Path(str(resources.files("fastapi_offline").joinpath("static")))
    app.mount(ASSETS_URL, StaticFiles(directory=assets), name="swagger-ui")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get(DOCS_URL, include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        # Behind a proxy that strips a prefix, links must carry it back.
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - API docs",
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            # The default validator badge fetches from validator.swagger.io and sends it the
            # schema's URL.
            swagger_ui_parameters={"validatorUrl": None},
        )
