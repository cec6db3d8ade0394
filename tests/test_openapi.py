"""The contract itself: `openapi.yaml` validates, names exactly the routes the app has (and the other way
round), agrees with them on scopes and credentials, and is served byte for byte; `/docs` needs nothing
from outside the service."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
import yaml
from openapi_spec_validator import validate
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount, Route

from service import docs, errors, messages, reserved
from service.endpoint import ApiRoute
from service.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
SPEC_PATH = ROOT / "openapi.yaml"
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "options", "head", "trace"}
# Mounted apps that serve files, not operations: the docs page's own assets.
ASSET_MOUNTS = {"/docs/static"}


def load_spec() -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text())
    return spec


SPEC = load_spec()


def spec_operations() -> dict[tuple[str, str], dict[str, Any]]:
    """(METHOD, path template) → operation."""
    return {
        (method.upper(), path): operation
        for path, item in SPEC["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    }


# The app's two routes of Heartcore's one URL shape (SPEC §5: digits are an id, else an alias) are one
# path of the contract, so that no two of its paths are the same template.
SPEC_PATHS = {"/relation/{id}": "/relation/{idOrAlias}", "/relation/{alias}": "/relation/{idOrAlias}"}


def flatten(routes: Iterable[BaseRoute], prefix: str = "") -> Iterator[tuple[str, BaseRoute]]:
    """(full path template as the contract writes it, route) for every route, inside mounts too;
    `{id:int}` → `{id}`, and SPEC_PATHS."""
    for route in routes:
        if isinstance(route, Mount):
            inner = route.routes
            if inner:
                yield from flatten(inner, prefix + route.path)
            else:
                yield prefix + route.path, route
        elif isinstance(route, Route):
            path = prefix + route.path_format
            yield SPEC_PATHS.get(path, path), route


def app_operations(app: Starlette) -> dict[tuple[str, str], Route]:
    """(METHOD, path template) → route; HEAD is left out (Starlette adds it to every GET)."""
    found: dict[tuple[str, str], Route] = {}
    for path, route in flatten(app.routes):
        if isinstance(route, Route):
            for method in route.methods or ():
                if method != "HEAD":
                    found[(method, path)] = route
    return found


def test_spec_validates() -> None:
    validate(SPEC)
    assert SPEC["openapi"].startswith("3.1")


def test_path_templates_are_normalised() -> None:
    paths = {path for path, _ in flatten([Route("/relation/type/{alias:str}", lambda r: None)])}
    assert paths == {"/relation/type/{alias}"}
    paths = {path for path, _ in flatten([Route("/relation/{id:int}", lambda r: None)])}
    assert paths == {"/relation/{idOrAlias}"}


async def test_every_route_is_in_the_spec_and_every_operation_is_routed(app: Starlette) -> None:
    routed = set(app_operations(app))
    documented = set(spec_operations())
    assert routed - documented == set(), "routes of the app missing from openapi.yaml"
    assert documented - routed == set(), "operations of openapi.yaml the app does not have"
    mounts = {path for path, route in flatten(app.routes) if isinstance(route, Mount)}
    assert mounts == ASSET_MOUNTS


async def test_scopes_and_credentials_agree(app: Starlette) -> None:
    """An operation names the scope its route checks; only routes without a credential say so."""
    operations = spec_operations()
    for key, route in app_operations(app).items():
        operation = operations[key]
        if isinstance(route, ApiRoute):
            assert operation.get("x-required-scope") == route.operations[key[0]].scope, key
            assert "security" not in operation, key  # the document's default: any one of the three
        else:
            assert operation.get("security") == [], key
            assert "x-required-scope" not in operation, key
    assert {scheme for item in SPEC["security"] for scheme in item} == {
        "bearerAuth",
        "apiKeyAuth",
        "basicAuth",
    }


def test_operation_ids_read_well_and_are_unique() -> None:
    ids = [operation["operationId"] for operation in spec_operations().values()]
    assert len(ids) == len(set(ids))
    for operation_id in ids:
        assert re.fullmatch(r"[a-z]+(?:[A-Z][a-z]+)*", operation_id), operation_id


def test_every_error_status_has_the_envelope() -> None:
    for (method, path), operation in spec_operations().items():
        for status, response in operation["responses"].items():
            if not status.startswith(("4", "5")):
                continue
            ref = response.get("$ref", "")
            assert ref.startswith("#/components/responses/"), (method, path, status)
            target = SPEC["components"]["responses"][ref.rsplit("/", 1)[1]]
            schema = target["content"]["application/hal+json"]["schema"]["$ref"]
            assert schema.endswith(("/ErrorResponse", "/ValidationErrorResponse")), (method, path, status)


def message_patterns() -> dict[str, re.Pattern[str]]:
    """Every user-facing message of service/messages.py (and the errors' defaults), `{x}` as a wildcard."""
    texts = [value for name, value in vars(messages).items() if name.isupper() and isinstance(value, str)]
    texts += [
        cls.default_message
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.ApiError)
    ]
    return {text: re.compile("^" + re.sub(r"\\\{[a-z_]+\\\}", ".+", re.escape(text)) + "$") for text in texts}


def error_examples(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        error = node.get("error")
        if isinstance(error, dict) and "message" in error:
            yield error
        for value in node.values():
            yield from error_examples(value)
    elif isinstance(node, list):
        for value in node:
            yield from error_examples(value)


def test_error_examples_use_the_service_messages() -> None:
    """STYLE: tests and openapi.yaml use the same strings as service/messages.py."""
    patterns = message_patterns().values()
    examples = list(error_examples(SPEC))
    assert len(examples) > 10
    for error in examples:
        texts = [error["message"]]
        for field_messages in error.get("details", {}).get("errors", {}).values():
            texts += field_messages
        for text in texts:
            assert any(pattern.match(text) for pattern in patterns), text


def test_body_limit_is_the_default_setting() -> None:
    limit = Settings().max_body_bytes
    described = SPEC["components"]["responses"]["PayloadTooLarge"]["description"]
    assert f"default {limit} bytes" in described


async def test_openapi_yaml_is_served_byte_for_byte(client: httpx.AsyncClient) -> None:
    # No credential, and a version the API would refuse: neither is checked here.
    response = await client.get("/openapi.yaml", headers={"Api-Version": "3"})
    assert response.status_code == 200
    assert response.content == SPEC_PATH.read_bytes()
    assert response.headers["content-type"] == "application/yaml"
    as_text = await client.get("/openapi.yaml", headers={"Accept": "text/yaml"})
    assert as_text.headers["content-type"].startswith("text/yaml")
    assert as_text.content == response.content


def test_openapi_is_read_once_at_assembly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = docs.openapi_text

    def counted() -> bytes:
        calls.append(1)
        return real()

    monkeypatch.setattr(docs, "openapi_text", counted)
    docs.routes()
    assert calls == [1]


class References(HTMLParser):
    """Every URL a page loads by itself: `src` and `href` attributes, and the spec URL of the inline
    Swagger UI set-up."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in_script = tag == "script"
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.urls.append(value)

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)


async def test_docs_page_loads_only_from_the_service(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs", headers={"Api-Version": "3"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    parser = References()
    parser.feed(page.text)
    spec_urls = re.findall(r'url:\s*"([^"]+)"', "".join(parser.scripts))
    assert spec_urls == ["http://testserver/openapi.yaml"]
    urls = [*parser.urls, *spec_urls]
    assert any(url.endswith("swagger-ui-bundle.js") for url in urls)
    assert any(url.endswith("swagger-ui.css") for url in urls)
    page_url = str(page.url)
    for url in urls:
        absolute = urljoin(page_url, url)
        assert urlsplit(absolute).netloc == urlsplit(page_url).netloc, url  # nothing from elsewhere
        asset = await client.get(absolute)
        assert asset.status_code == 200, url
        assert asset.content, url
    assert "validatorUrl: null" in page.text  # Swagger UI would otherwise call an online validator


async def test_docs_page_with_a_trailing_slash_and_behind_a_proxy(client: httpx.AsyncClient) -> None:
    slashed = await client.get("/docs/")
    assert slashed.status_code == 200
    assert 'src="http://testserver/docs/static/swagger-ui-bundle.js"' in slashed.text
    proxied = await client.get(
        "/docs",
        headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "relations.example.com"},
    )
    assert 'url: "https://relations.example.com/openapi.yaml"' in proxied.text


async def test_docs_assets_missing_is_a_404_envelope(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs/static/no-such-file.js")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NotFound"


async def test_relation_put_comment_null_clears_and_absent_keeps(
    client: httpx.AsyncClient, project: Any
) -> None:
    """As openapi.yaml's RelationUpdate says: `comment: null` stores "", no `comment` keeps it."""
    body = {
        "parentId": str(uuid.uuid4()),
        "childId": str(uuid.uuid4()),
        "relationTypeAlias": "relateDocumentOnCopy",
        "comment": "kept",
    }
    created = await client.post("/relation", json=body, headers=project.headers)
    url = f"/relation/{created.json()['_id']}"
    kept = await client.put(url, json={"parentId": body["parentId"]}, headers=project.headers)
    assert kept.status_code == 200 and kept.json()["comment"] == "kept"
    cleared = await client.put(url, json={"comment": None}, headers=project.headers)
    assert cleared.status_code == 200 and cleared.json()["comment"] == ""


async def test_a_trailing_slash_is_the_same_route(client: httpx.AsyncClient, project: Any) -> None:
    """Heartcore's documentation posts to `/relation/`: answered as `/relation`, not redirected."""
    body = {
        "parentId": str(uuid.uuid4()),
        "childId": str(uuid.uuid4()),
        "relationTypeAlias": "relateDocumentOnCopy",
    }
    created = await client.post("/relation/", json=body, headers=project.headers)
    assert created.status_code == 201
    assert created.headers["location"].endswith(f"/relation/{created.json()['_id']}")
    listed = await client.get(f"/relation/parent/{body['parentId']}/", headers=project.headers)
    assert listed.status_code == 200 and listed.json()["_totalItems"] == 1
    assert listed.json()["_links"]["self"]["href"].split("?")[0].endswith(body["parentId"])
    types = await client.get("/relation/type/", headers=project.headers)
    assert types.status_code == 200


def test_alias_schema_refuses_exactly_the_reserved_words(app: Starlette) -> None:
    """The contract's `Alias` pattern names the words the routes reserve (service/reserved.py)."""
    pattern = SPEC["components"]["schemas"]["Alias"]["pattern"]
    found = re.match(r"^\^\(\?!\(\?:([a-z|]+)\)\$\)", pattern)
    assert found, pattern
    assert set(found.group(1).split("|")) == reserved.words()
