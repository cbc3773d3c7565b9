"""Swagger UI at `/docs`, served from the swagger-ui-bundle package instead of FastAPI's CDN
links, which fail on an offline server and tell a third party about every docs visit.

swagger-ui-bundle 1.1.0 ships Swagger UI 4.15.5, which renders only OpenAPI 3.0 documents
("Unable to render this definition" for FastAPI's 3.1.0). So the page reads a 3.0 rendering
of the schema from `/docs/openapi.json`; `/openapi.json` stays the 3.1 source of truth. The
shim goes once the bundled Swagger UI is 5.x.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

DOCS_URL = "/docs"
ASSETS_URL = "/docs/assets"
DOCS_OPENAPI_URL = "/docs/openapi.json"


def openapi_30(document: dict[str, Any]) -> dict[str, Any]:
    """`document` (OpenAPI 3.1, as FastAPI writes it) in the 3.0 terms Swagger UI 4 reads:
    nullable instead of a `null` type, boolean exclusive bounds, `enum` for `const`, one
    `example`, binary uploads."""
    out: dict[str, Any] = _downgrade(document)  # rebuilt, so `document` stays as it was
    out["openapi"] = "3.0.3"
    return out


def _downgrade(node: Any) -> Any:
    if isinstance(node, list):
        return [_downgrade(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _downgrade(value) for key, value in node.items()}
    options = node.get("anyOf")
    if isinstance(options, list) and {"type": "null"} in options:
        rest = [option for option in options if option != {"type": "null"}]
        del node["anyOf"]
        if len(rest) == 1 and "$ref" in rest[0]:
            node["allOf"] = rest  # 3.0 ignores every sibling of a $ref, nullable included
        elif len(rest) == 1:
            node = {**rest[0], **node}
        else:
            node["anyOf"] = rest
        node["nullable"] = True
    if isinstance(node.get("type"), list):
        types = [t for t in node["type"] if t != "null"]
        if len(types) < len(node["type"]):
            node["nullable"] = True
        node["type"] = types[0] if len(types) == 1 else types
    for bound, side in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(node.get(bound), int | float) and not isinstance(node[bound], bool):
            node[side], node[bound] = node[bound], True
    if "const" in node:
        node["enum"] = [node.pop("const")]
    # Only inside schemas is `examples` a list; a media type's `examples` is a name -> object map.
    if isinstance(node.get("examples"), list):
        examples = node.pop("examples")
        if examples:
            node["example"] = examples[0]
    if node.get("type") == "string" and "contentMediaType" in node:
        del node["contentMediaType"]
        node["format"] = "binary"
    return node


def install_docs(app: FastAPI) -> None:
    """Mount the Swagger UI assets and add `/docs`; the app must be built with `docs_url=None`
    and `redoc_url=None` (the package has no ReDoc, and a CDN ReDoc would defeat the point)."""
    app.mount(ASSETS_URL, StaticFiles(directory=Path(str(swagger_ui_path))), name="swagger-ui")
    rendered: dict[str, Any] = {}

    @app.get(DOCS_OPENAPI_URL, include_in_schema=False)
    async def docs_openapi() -> JSONResponse:
        if not rendered:
            rendered.update(openapi_30(app.openapi()))
        return JSONResponse(rendered)

    @app.get(DOCS_URL, include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        # Behind a proxy that strips a prefix, links must carry it back.
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=root + DOCS_OPENAPI_URL,
            title=f"{app.title} - API docs",
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon-32x32.png",
            # The default validator badge fetches from validator.swagger.io and sends it the
            # schema's URL.
            swagger_ui_parameters={"validatorUrl": None},
        )
