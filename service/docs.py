"""The API contract, served: `/openapi.yaml` byte for byte as the repository holds it, and `/docs`,
Swagger UI from the `swagger-ui-py` package's own files, so the page works with no internet (no CDN).
No credential and no version check on any of them."""

from __future__ import annotations

import html
import importlib.util
import json
from importlib import resources
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from service.hal import links_for

SWAGGER_UI_PACKAGE = "swagger_ui"  # PyPI `swagger-ui-py`: Swagger UI 5, which renders OpenAPI 3.1

# URLs start from the same base as every link the API writes (RELATIONS_PUBLIC_URL, else the request's
# own, proxy headers honoured), so the page works at `/docs` and `/docs/` and behind a proxy.
DOCS_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Relation registry API</title>
  <link rel="stylesheet" href="{base}/docs/static/swagger-ui.css">
  <link rel="icon" type="image/png" href="{base}/docs/static/favicon-32x32.png" sizes="32x32">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{base}/docs/static/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({{
      url: {spec_url},
      dom_id: "#swagger-ui",
      presets: [SwaggerUIBundle.presets.apis],
      layout: "BaseLayout",
      deepLinking: true,
      displayOperationId: true,
      docExpansion: "list",
      validatorUrl: null
    }});
  </script>
</body>
</html>
"""


def openapi_text() -> bytes:
    """The repository's `openapi.yaml`, or the copy installed beside the package."""
    source = Path(__file__).resolve().parent.parent / "openapi.yaml"
    if source.exists():
        return source.read_bytes()
    return resources.files("service").joinpath("openapi.yaml").read_bytes()


def swagger_ui_assets() -> Path:
    """The folder of Swagger UI's static files inside the installed package (found without importing
    it: only its files are used)."""
    spec = importlib.util.find_spec(SWAGGER_UI_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the swagger-ui-py package is not installed (`pip install -e .`)")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def wants_text_yaml(request: Request) -> bool:
    return "text/yaml" in request.headers.get("accept", "").lower()


def routes() -> list[BaseRoute]:
    """The contract's routes; `openapi.yaml` is read once, here, when the app is assembled."""
    document = openapi_text()

    async def openapi_document(request: Request) -> Response:
        media_type = "text/yaml" if wants_text_yaml(request) else "application/yaml"
        return Response(document, media_type=media_type, headers={"Vary": "Accept"})

    async def docs_page(request: Request) -> Response:
        base = links_for(request).base
        spec_url = json.dumps(base + "/openapi.yaml").replace("<", "\\u003c")
        return HTMLResponse(DOCS_PAGE.format(base=html.escape(base), spec_url=spec_url))

    return [
        Route("/openapi.yaml", openapi_document, methods=["GET"], name="docs:openapi"),
        Route("/docs", docs_page, methods=["GET"], name="docs:page"),
        Mount("/docs/static", StaticFiles(directory=swagger_ui_assets()), name="docs:static"),
    ]
