"""Declaring the API's routes. A route is a path and its operations (one per method); each operation's
handler runs behind the pipeline's steps (service/pipeline.py). Routing itself is Starlette's: an
unknown path is 404, a known path with another method 405 with `Allow` naming the route's methods.

    api_route(path, handler, method=..., name=..., scope=...)   one method
    ApiRoute(path, [operation(...), operation(...)])            several methods on one path

`assemble` puts the declared routes into the router: operations declared separately on one path become
one route, and a `{param}` that another route's literal segment (or `{id:int}`) would also match is
refused those values, so no request matches two routes and their order does not matter. Every literal
segment of a declared path is a reserved word (service/reserved.py), never a valid alias."""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import NotRequired, TypedDict, Unpack

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import Scope

from service import reserved
from service.context import Context, Handler, Operation, ReadTags
from service.pipeline import chain, checked_headers

__all__ = ["ApiRoute", "Context", "Handler", "Operation", "api_route", "assemble", "operation"]

_PARAM = re.compile(r"{(\w+)(?::(\w+))?}")


class OperationFields(TypedDict):
    """What declares one method of a route, as keywords of `operation` and `api_route`; the defaults of
    the optional ones are Operation's."""

    method: str
    name: str
    scope: str
    invalid_message: NotRequired[str]
    queue: NotRequired[Callable[[Context], Hashable] | None]
    streams_body: NotRequired[bool]
    idempotency: NotRequired[bool]
    cache: NotRequired[ReadTags | None]
    relational: NotRequired[bool]


def operation(handler: Handler, **fields: Unpack[OperationFields]) -> Operation:
    """One method of a route; `scope` is what it needs, `queue` (edits only) what it waits in;
    `streams_body` (see Operation) for a handler that reads a large body as a stream; `idempotency`
    False for a write whose answer must never be stored (it carries a secret); `cache` (reads) the
    tags its answer depends on, for the read cache; `relational` False for a write that changes no
    relation or relation type."""
    return Operation(handler=handler, **fields)


class ApiRoute(Route):
    """A path and its operations, each behind the pipeline."""

    def __init__(self, path: str, operations: Sequence[Operation]) -> None:
        self.operations = {op.method: op for op in operations}
        if len(self.operations) != len(operations):
            raise ValueError(f"{path}: two operations of one method")
        runs = {op.method: chain(op) for op in operations}
        if "GET" in runs:
            self.operations.setdefault("HEAD", self.operations["GET"])
            runs.setdefault("HEAD", runs["GET"])
        by_method = {method: (self.operations[method], run) for method, run in runs.items()}

        async def endpoint(request: Request) -> Response:
            op, run = by_method[request.method]
            return await run(Context(request, op, checked_headers(request)))

        super().__init__(path, endpoint, methods=list(self.operations), name=operations[0].name)
        reserved.reserve(path)
        # Values a `{param}` must not take because another route owns them: name → (words, digits).
        self.refused: dict[str, tuple[frozenset[str], bool]] = {}

    @property
    def names(self) -> list[str]:
        return [op.name for method, op in self.operations.items() if method != "HEAD"]

    @property
    def scope(self) -> str:
        """The scope of a route of one method (tests ask; a route of several has one per operation)."""
        (scope,) = {op.scope for op in self.operations.values()}
        return scope

    def name_for(self, method: str) -> str:
        found = self.operations.get(method)
        return found.name if found else self.name

    def per_method(self) -> list[ApiRoute]:
        """One route per method (tests walk every operation as a route of its own)."""
        return [ApiRoute(self.path, [op]) for method, op in self.operations.items() if method != "HEAD"]

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match is not Match.NONE and self.refused:
            params = child["path_params"]
            for param, (words, digits) in self.refused.items():
                value = params[param]
                if value in words or (digits and value.isascii() and value.isdigit()):
                    return Match.NONE, {}
        return match, child


def api_route(path: str, handler: Handler, **fields: Unpack[OperationFields]) -> ApiRoute:
    """An authenticated API route for one method, requiring `scope`. Writes honour `Idempotency-Key`
    unless `idempotency` is False (an answer that carries a secret must never be stored)."""
    return ApiRoute(path, [operation(handler, **fields)])


def _segments(path: str) -> list[tuple[str, str | None]]:
    """(literal, None) or (param name, convertor) per segment."""
    found: list[tuple[str, str | None]] = []
    for segment in path.strip("/").split("/"):
        param = _PARAM.fullmatch(segment)
        found.append((param.group(1), param.group(2) or "str") if param else (segment, None))
    return found


def _refusals(route: ApiRoute, others: Iterable[ApiRoute]) -> dict[str, tuple[frozenset[str], bool]]:
    """For each `{param}` of `route`: the literal segments, and whether the digits, that another route
    of the same shape has in its place."""
    mine = _segments(route.path)
    words: dict[str, set[str]] = {}
    digits: set[str] = set()
    for other in others:
        theirs = _segments(other.path)
        if other is route or len(theirs) != len(mine):
            continue
        for at, (name, convertor) in enumerate(mine):
            if convertor != "str":
                continue
            rest_fits = all(
                b == a or (kind == "str")
                for n, ((a, _), (b, kind)) in enumerate(zip(theirs, mine, strict=True))
                if n != at
            )
            if not rest_fits:
                continue
            their_name, their_convertor = theirs[at]
            if their_convertor is None:
                words.setdefault(name, set()).add(their_name)
            elif their_convertor == "int":
                digits.add(name)
    return {name: (frozenset(words.get(name, ())), name in digits) for name in {*words, *digits}}


def assemble(routes: Iterable[BaseRoute]) -> list[BaseRoute]:
    """The router's routes: the ApiRoutes of one path merged into one, each refused what another owns."""
    merged: dict[str, list[Operation]] = {}
    order: list[BaseRoute | str] = []
    for route in routes:
        if isinstance(route, ApiRoute):
            if route.path not in merged:
                merged[route.path] = []
                order.append(route.path)
            merged[route.path].extend(op for method, op in route.operations.items() if method != "HEAD")
        else:
            order.append(route)
    api = {path: ApiRoute(path, operations) for path, operations in merged.items()}
    for route in api.values():
        route.refused = _refusals(route, api.values())
    return [api[item] if isinstance(item, str) else item for item in order]
