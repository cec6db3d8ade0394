"""service/hal.py: link templates from named routes, paging parameters and the HAL page shape."""

from __future__ import annotations

import pytest
from starlette.requests import Request
from starlette.routing import Mount, Route

from service.cursors import Cursors, PageStart, Position
from service.errors import BadRequest
from service.hal import Edges, Links, Paging, link_header, paged, route_templates


async def nothing(request: Request) -> None:
    return None


def request_for(url: str) -> Request:
    path, _, query = url.partition("?")
    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "query_string": query.encode(),
        "headers": [],
        "scheme": "http",
        "server": ("testserver", 80),
    }
    return Request(scope)


def test_route_templates_come_from_named_routes() -> None:
    routes = [
        Route("/relation/{id:int}", nothing, name="relations:get"),
        Mount("/api", routes=[Route("/x/{alias}", nothing, name="x:get")]),
        Route("/unnamed", nothing),
    ]
    templates = route_templates(routes)
    assert templates["relations:get"] == "/relation/{id}"
    assert templates["x:get"] == "/api/x/{alias}"
    links = Links("https://r.example", templates)
    assert links.href("relations:get", id=4) == "https://r.example/relation/4"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", (1, 100)),
        ("page=3&pageSize=7", (3, 7)),
        ("pageSize=1000", (1, 1000)),
        ("page=2x", None),
        ("page=%EF%BC%92", None),
    ],
)
def test_paging(query: str, expected: tuple[int, int] | None) -> None:
    request = request_for(f"/x?{query}")
    if expected is None:
        with pytest.raises(BadRequest):
            Paging.from_request(request)
    else:
        paging = Paging.from_request(request)
        assert (paging.page, paging.page_size) == expected
        assert paging.offset == (expected[0] - 1) * expected[1]


def test_page_keeps_other_query_parameters() -> None:
    request = request_for("/relation/child/c?dependency=true&page=2&pageSize=1")
    links = Links("http://testserver", {})
    items = [{"_links": {"self": {"href": "http://testserver/relation/9"}}}]
    cursors = Cursors(b"k" * 32)
    window = PageStart.of(page=2, page_size=1, cursor=None, cursors=cursors, scope="s", start=(0,))
    edges = Edges((9,), (9,), True, cursors)
    page = paged(request, links, key="relations", items=items, total=3, window=window, edges=edges)
    after = cursors.make("s", Position(True, 3, (9,)))
    before = cursors.make("s", Position(False, 1, (9,)))
    assert page["_links"]["next"]["href"] == (
        f"http://testserver/relation/child/c?cursor={after}&dependency=true&pageSize=1"
    )
    assert page["_links"]["prev"]["href"] == (
        f"http://testserver/relation/child/c?cursor={before}&dependency=true&pageSize=1"
    )
    assert (
        page["_links"]["self"]["href"]
        == "http://testserver/relation/child/c?page=2&dependency=true&pageSize=1"
    )
    assert page["_links"]["relations"] == [{"href": "http://testserver/relation/9"}]
    assert page["_totalPages"] == 3 and page["_page"] == 2
    assert list(page["_embedded"]) == ["relations"]
    assert link_header(request, links, page) == (
        f'<{page["_links"]["next"]["href"]}>; rel="next", <{page["_links"]["prev"]["href"]}>; rel="prev", '
        '<http://testserver/relation/child/c?page=1&dependency=true&pageSize=1>; rel="first"'
    )


def test_an_empty_page_past_the_end_keeps_a_prev_page_link() -> None:
    request = request_for("/relation/type?page=3&pageSize=2")
    window = PageStart.of(page=3, page_size=2, cursor=None, cursors=Cursors(b"k"), scope="s", start=("",))
    page = paged(
        request, Links("http://t", {}), key="relationtypes", items=[], total=4, window=window, edges=None
    )
    assert page["_links"]["prev"] == {"href": "http://t/relation/type?page=2&pageSize=2"}
    assert "next" not in page["_links"]
