"""The delivery client's safety (SPEC §10): without RELATIONS_WEBHOOK_ALLOW_PRIVATE a connection is made
only to a public address, checked at connect time on the address actually connected to (a host name
that resolves to loopback, also when it resolved to a public address before: DNS rebinding), and no
redirect is followed. With the setting, a host name still connects to the address it resolved to, with
the url's host in `Host`."""

from __future__ import annotations

import asyncio
import re

import pytest

from bench.receiver import Received, Receiver
from service.webhooks.client import AddressRefused, CheckedBackend, delivery_client, is_public


class Resolving:
    """A resolver that gives `addresses` for every name, and notes the names asked."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = list(addresses)
        self.calls: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        return self.addresses


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:2800:220:1:248:1893:25c8:1946", True),
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("172.16.5.4", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("::1", False),
        ("fe80::1%eth0", False),
        ("fd00::1", False),
        ("::ffff:127.0.0.1", False),
        ("224.0.1.1", False),
    ],
)
def test_public_addresses(address: str, public: bool) -> None:
    assert is_public(address) is public


async def test_loopback_is_refused_without_the_setting() -> None:
    async with Receiver().running() as receiver, delivery_client(allow_private=False, timeout=5) as client:
        with pytest.raises(AddressRefused, match=re.escape("127.0.0.1")):
            await client.post(receiver.url, content=b"{}")
        with pytest.raises(AddressRefused, match="not a public address"):
            await client.post(f"http://localhost:{receiver.port}/hook", content=b"{}")
    assert receiver.received == []


async def test_a_name_that_rebinds_to_loopback_is_refused_at_connect() -> None:
    # The name resolved to a public address when the webhook was made; now it resolves to loopback.
    resolver = Resolving("127.0.0.1")
    client = delivery_client(allow_private=False, timeout=5, resolver=resolver)
    async with Receiver().running() as receiver, client:
        with pytest.raises(AddressRefused, match=re.escape("hooks.example.org resolves to 127.0.0.1")):
            await client.post(f"http://hooks.example.org:{receiver.port}/hook", content=b"{}")
    assert receiver.received == []


async def test_any_private_address_among_the_answers_refuses() -> None:
    resolver = Resolving("93.184.216.34", "127.0.0.1")
    async with delivery_client(allow_private=False, timeout=5, resolver=resolver) as client:
        with pytest.raises(AddressRefused):
            await client.post("https://hooks.example.org/hook", content=b"{}")


async def test_the_checked_address_is_connected_to_with_the_name_in_host() -> None:
    resolver = Resolving("127.0.0.1")
    client = delivery_client(allow_private=True, timeout=5, resolver=resolver)
    async with Receiver().running() as receiver, client:
        response = await client.post(f"http://hooks.example.org:{receiver.port}/hook", content=b"{}")
    assert response.status_code == 200
    (request,) = receiver.received
    assert request.headers["host"] == f"hooks.example.org:{receiver.port}"
    assert resolver.calls == ["hooks.example.org"]


async def test_redirects_are_not_followed() -> None:
    async def redirect(request: Received) -> int:
        return 307

    async with (
        Receiver(redirect).running() as receiver,
        delivery_client(allow_private=True, timeout=5) as client,
    ):
        response = await client.post(receiver.url, content=b"{}")
    assert response.status_code == 307
    assert len(receiver.received) == 1


async def test_a_connection_its_server_closed_is_seen_before_it_is_used_again() -> None:
    """The idle check httpcore asks of a pooled connection: not readable while the server keeps it,
    readable once the server has closed it (so the next delivery opens a new one and succeeds)."""
    backend = CheckedBackend(allow_private=True)
    closed = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await closed.wait()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        stream = await backend.connect_tcp("127.0.0.1", port)
        assert stream.get_extra_info("is_readable") is False
        closed.set()
        for _ in range(100):  # the close reaches the client's socket (bounded)
            if stream.get_extra_info("is_readable"):
                break
            await asyncio.sleep(0.01)
        assert stream.get_extra_info("is_readable") is True
        assert stream.get_extra_info("server_addr")[1] == port  # other questions go to httpcore's stream
        await stream.aclose()
    finally:
        server.close()


async def test_a_receiver_that_closes_each_connection_after_answering_gets_every_delivery() -> None:
    """The server closes each connection once it has answered (without saying so in a header): the
    pooled connection must be seen closed before the next delivery, or that delivery fails."""
    answered = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal answered
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(re.search(rb"content-length: (\d+)", head.lower()).group(1))  # type: ignore[union-attr]
        await reader.readexactly(length)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
        await writer.drain()
        answered += 1
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with delivery_client(allow_private=True, timeout=5) as client:
            for number in range(5):
                await asyncio.sleep(0.05)  # the close reaches the client before the next delivery
                response = await client.post(f"http://127.0.0.1:{port}/hook", content=b"{}")
                assert response.status_code == 200, number
    finally:
        server.close()
    assert answered == 5
