"""service/endpoint.py: routes of several methods, `Allow` from the router, no request matched by two
routes (so their order does not matter), and reserved words derived from the routes."""

from __future__ import annotations

import ast
from pathlib import Path

import httpx
from starlette.routing import Match, Route

from service import messages, reserved
from service.app import api_routes
from service.endpoint import ApiRoute
from service.fields import ALIAS, alias_problem
from tests.conftest import error_of
from tests.test_auth import concrete_path

SERVICE = Path(__file__).resolve().parent.parent / "service"
ROUTES = [route for route in api_routes() if isinstance(route, ApiRoute)]


def candidate_paths() -> set[str]:
    """Every route's path filled with plausible values, and with each reserved word and digits in
    each parameter's place."""
    paths: set[str] = set()
    for route in ROUTES:
        paths.add(concrete_path(route))
        for name in route.param_convertors:
            for value in [*reserved.words(), "123", "relateDocumentOnCopy"]:
                paths.add(concrete_path(route, {name: value}))
    return paths


def matching(routes: list[ApiRoute], path: str, method: str = "GET") -> list[ApiRoute]:
    scope = {"type": "http", "method": method, "path": path, "root_path": ""}
    return [route for route in routes if route.matches(scope)[0] is not Match.NONE]


def test_no_request_matches_two_routes() -> None:
    for path in candidate_paths():
        for method in ("GET", "PUT", "TRACE"):
            assert len(matching(ROUTES, path, method)) <= 1, (method, path)


def test_route_order_does_not_matter() -> None:
    backwards = list(reversed(ROUTES))
    for path in candidate_paths():
        assert matching(ROUTES, path)[:1] == matching(backwards, path)[:1], path


def test_one_route_per_path_with_every_method() -> None:
    paths = [route.path for route in ROUTES]
    assert len(paths) == len(set(paths))
    child_list = next(route for route in ROUTES if route.path == "/relation/parent/{guid}/{alias}")
    assert set(child_list.operations) == {"GET", "HEAD", "PATCH", "PUT", "POST", "DELETE"}


def test_every_literal_word_of_a_route_is_reserved() -> None:
    """A literal segment under /relation that is a valid alias is not an alias: a type named so would
    be shadowed. Every route counts, also one not declared through api_route."""
    under_relation = [r for r in api_routes() if isinstance(r, Route) and r.path.startswith("/relation")]
    api_under_relation = [route.path for route in ROUTES if route.path.startswith("/relation")]
    assert [route.path for route in under_relation] == api_under_relation
    for route in under_relation:
        for segment in route.path.strip("/").split("/")[1:]:
            if not segment.startswith("{") and ALIAS.match(segment):
                assert alias_problem(segment) == messages.ALIAS_RESERVED.format(alias=segment), route.path
    assert {"type", "parent", "child", "related", "referenced"} <= reserved.words()


async def test_allow_comes_from_the_route(client: httpx.AsyncClient) -> None:
    response = await client.request("TRACE", "/relation/parent/x/y")
    assert response.status_code == 405
    assert error_of(response)["code"] == "MethodNotAllowed"
    assert response.headers["allow"] == "DELETE, GET, HEAD, PATCH, POST, PUT"
    by_id = await client.request("POST", "/relation/12")
    assert by_id.headers["allow"] == "DELETE, GET, HEAD, PUT"
    alias = await client.put("/relation/someAlias")
    assert alias.headers["allow"] == "GET, HEAD"


def imports_of(module: Path) -> set[str]:
    """The service modules `module` imports, at its top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.startswith("service.")}


def test_no_module_imports_one_that_imports_it_back() -> None:
    modules = {
        ".".join(("service", *path.relative_to(SERVICE).with_suffix("").parts)).removesuffix(
            ".__init__"
        ): path
        for path in SERVICE.rglob("*.py")
    }
    graph = {name: imports_of(path) & set(modules) - {name} for name, path in modules.items()}
    for start in graph:
        seen: set[str] = set()
        todo = list(graph[start])
        while todo:
            current = todo.pop()
            assert current != start, f"{start} imports itself through {sorted(seen)}"
            if current not in seen:
                seen.add(current)
                todo.extend(graph[current])
