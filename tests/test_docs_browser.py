"""`/docs` as a person sees it: headless Chromium (Debian's `chromium`, driven by Playwright) with no
network beyond loopback opens the page from the running service and shows every operation of
`openapi.yaml`, and not one request leaves the machine."""

from __future__ import annotations

import ipaddress
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from service.settings import Settings
from tests.live_server import LiveServer, live_server

CHROMIUM = os.environ.get("RELATIONS_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip(
        "no Chromium here: install Debian's `chromium` package (.ci/run does when apt is usable)",
        allow_module_level=True,
    )
playwright_api = pytest.importorskip(
    "playwright.async_api", reason="playwright is not installed (pip install -e '.[dev]')"
)

ROOT = Path(__file__).resolve().parent.parent
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "options", "head", "trace"}
# Nothing resolves but loopback, and nothing runs in the background that could phone home.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]


def spec_operations() -> dict[str, tuple[str, str]]:
    """operationId → (METHOD, path), with the webhooks' deliveries (OpenAPI 3.1 `webhooks`, which the
    page lists under their names) beside the paths."""
    spec = yaml.safe_load((ROOT / "openapi.yaml").read_text())
    items = {**spec["paths"], **spec.get("webhooks", {})}
    return {
        operation["operationId"]: (method.upper(), path)
        for path, item in items.items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    }


def is_local(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https", "ws", "wss"):
        return True  # data:, blob:, about: never touch the network
    host = parts.hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture(scope="module")
def live(settings: Settings) -> Iterator[LiveServer]:
    with live_server(settings) as server:
        yield server


async def test_docs_page_renders_every_operation_offline(live: LiveServer, tmp_path: Path) -> None:
    expected = spec_operations()
    requested: list[str] = []
    blocked: list[str] = []
    console_errors: list[str] = []

    async def guard(route: Any) -> None:
        url = route.request.url
        if is_local(url):
            await route.continue_()
        else:
            blocked.append(url)
            await route.abort("internetdisconnected")

    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, chromium_sandbox=False, args=CHROMIUM_ARGS
        )
        try:
            context = await browser.new_context(viewport={"width": 1280, "height": 900})
            await context.route("**/*", guard)
            page = await context.new_page()
            page.on("request", lambda request: requested.append(request.url))
            page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda error: console_errors.append(str(error)))

            response = await page.goto(f"{live.base_url}/docs", wait_until="networkidle")
            assert response is not None and response.status == 200
            blocks = page.locator(".opblock")
            await page.wait_for_function(
                "n => document.querySelectorAll('.opblock').length >= n", arg=len(expected), timeout=30_000
            )
            rendered: dict[str, tuple[str, str]] = {}
            for index in range(await blocks.count()):
                block = blocks.nth(index)
                method = (await block.locator(".opblock-summary-method").inner_text()).strip().upper()
                path = await block.locator(".opblock-summary-path").get_attribute("data-path")
                operation_id = (await block.locator(".opblock-summary-operation-id").inner_text()).strip()
                rendered[operation_id] = (method, path or "")
            errors_shown = await page.locator(".errors-wrapper").count()
            title = await page.locator(".info .title").inner_text()
            await page.screenshot(path=str(tmp_path / "docs.png"), full_page=False)
            await page.locator(".opblock-tag-section").first.screenshot(path=str(tmp_path / "operations.png"))
        finally:
            await browser.close()

    print(f"screenshots in {tmp_path}; {len(rendered)} operations rendered; {len(requested)} requests")
    assert rendered == expected
    assert title.startswith("Relation registry")
    assert errors_shown == 0, "Swagger UI reports errors in the document"
    assert console_errors == []
    assert blocked == [], "requests to leave the machine"
    assert [url for url in requested if not is_local(url)] == []
    assert any(url.endswith("/openapi.yaml") for url in requested)
