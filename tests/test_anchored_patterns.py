"""Every pattern of the service matches whole values: `$` in a `re.match` pattern also accepts a final
newline, which let `"evil\\n"` become a relation type (whose Location header uvicorn then refused,
dropping the connection), `nl2\\n` a Backendless type and `2\\n` a version. Also: no redirect built
from the Host header (Starlette's redirect_slashes)."""

from __future__ import annotations

import importlib
import pkgutil
import re

import httpx
import pytest
from starlette.applications import Starlette

import service
from service import messages
from service.bodies import parse_guid
from service.middleware import request_id
from service.projects.service import plausible_key, valid_project_alias
from tests.conftest import Project, error_of, guid

NEW_TYPE = {
    "name": "Newline",
    "parentObjectType": "DOCUMENT",
    "childObjectType": "DOCUMENT",
}


def module_patterns() -> list[tuple[str, str, re.Pattern[str]]]:
    found = []
    for info in pkgutil.walk_packages(service.__path__, "service."):
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if isinstance(value, re.Pattern):
                found.append((info.name, name, value))
    return found


@pytest.mark.parametrize(("module", "name", "pattern"), module_patterns())
def test_no_pattern_relies_on_dollar(module: str, name: str, pattern: re.Pattern[str]) -> None:
    """One mechanism for every pattern: fullmatch, with no `^…$` that a `match` would need."""
    source = pattern.pattern
    assert not source.endswith("$") and not source.startswith("^"), f"{module}.{name}: {source!r}"


async def test_a_type_alias_with_a_trailing_newline_is_422(
    client: httpx.AsyncClient, project: Project
) -> None:
    answer = await client.post(
        "/relation/type", json={**NEW_TYPE, "alias": "evil\n"}, headers=project.headers
    )
    assert answer.status_code == 422
    assert error_of(answer)["details"]["errors"]["alias"] == [messages.ALIAS_INVALID]
    listed = await client.get("/relation/type", headers=project.headers, params={"pageSize": 100})
    assert "evil\n" not in [t["alias"] for t in listed.json()["_embedded"]["relationtypes"]]


async def test_an_object_type_with_a_trailing_newline_is_422(
    client: httpx.AsyncClient, project: Project
) -> None:
    body = {**NEW_TYPE, "alias": "fine", "parentObjectType": "DOCUMENT\n"}
    answer = await client.post("/relation/type", json=body, headers=project.headers)
    assert answer.status_code == 422
    assert "parentObjectType" in error_of(answer)["details"]["errors"]


async def test_a_backendless_alias_with_a_trailing_newline_is_422(
    client: httpx.AsyncClient, project: Project
) -> None:
    answer = await client.put(
        f"/relation/parent/{guid()}/nl2%0A:Users:n", json=[guid()], headers=project.headers
    )
    assert answer.status_code == 422
    assert "alias" in error_of(answer)["details"]["errors"]
    assert (await client.get("/relation/type/nl2%0A", headers=project.headers)).status_code == 404


@pytest.mark.parametrize("version", ["2%0A", "2.0%0A", "%0A2"])
async def test_a_version_with_a_newline_is_400(
    client: httpx.AsyncClient, project: Project, version: str
) -> None:
    answer = await client.get(f"/relation/type?api-version={version}", headers=project.headers)
    assert answer.status_code == 400
    assert error_of(answer)["code"] == "BadRequest"


async def test_a_guid_with_a_trailing_newline_is_400(client: httpx.AsyncClient, project: Project) -> None:
    answer = await client.get(f"/relation/parent/{guid()}%0A", headers=project.headers)
    assert answer.status_code == 400
    body = {"parentId": guid() + "\n", "childId": guid(), "relationTypeAlias": "relateDocumentOnCopy"}
    created = await client.post("/relation", json=body, headers=project.headers)
    assert created.status_code == 422
    assert "parentId" in error_of(created)["details"]["errors"]


async def test_a_project_alias_with_a_trailing_newline_is_403(
    client: httpx.AsyncClient, project: Project
) -> None:
    answer = await client.get(f"/relation/type?Umb-Project-Alias={project.alias}%0A", headers=project.headers)
    assert answer.status_code == 403


def test_the_other_patterns_refuse_a_trailing_newline() -> None:
    value = guid()
    assert parse_guid(value) is not None and parse_guid(value + "\n") is None
    assert parse_guid("{" + value + "}\n") is None
    assert not valid_project_alias("shop\n")
    assert not plausible_key("rr_000000000000_" + "A" * 43 + "\n")
    assert request_id({"headers": [(b"x-request-id", b"abc\n")]}) != "abc\n"


async def test_an_idempotency_key_with_a_trailing_newline_is_400(app: Starlette, project: Project) -> None:
    # HTTP cannot carry a newline in a header; an ASGI server handing one over must still be refused.
    body = {"parentId": guid(), "childId": guid(), "relationTypeAlias": "relateDocumentOnCopy"}
    headers = [(b"api-key", project.api_key.encode()), (b"idempotency-key", b"key\n")]
    request = httpx.Request("POST", "http://testserver/relation", headers=headers, json=body)
    answer = await httpx.ASGITransport(app=app).handle_async_request(request)
    await answer.aread()
    assert answer.status_code == 400


@pytest.mark.parametrize("path", ["/relation/1//", "/relation//", "/relation/type///"])
async def test_repeated_trailing_slashes_never_redirect(
    client: httpx.AsyncClient, project: Project, path: str
) -> None:
    answer = await client.get(path, headers={**project.headers, "Host": "evil.example"})
    assert answer.status_code in (200, 404, 405), answer  # /relation takes only POST
    assert "location" not in answer.headers
    assert "error" in answer.json() or "_links" in answer.json() or "_id" in answer.json()


async def test_an_unknown_path_with_a_slash_is_404_in_the_envelope(
    client: httpx.AsyncClient, project: Project
) -> None:
    answer = await client.get("/relation//1", headers={**project.headers, "Host": "evil.example"})
    assert answer.status_code == 404 and "location" not in answer.headers
    assert error_of(answer)["code"] == "NotFound"
