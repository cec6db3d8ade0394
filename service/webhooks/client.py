"""The outbound HTTP client of webhook deliveries: httpx over httpcore's public network-backend API, so
that the address checked is the address connected to (no DNS rebinding between a check and a connect).

The backend resolves the url's host itself, refuses the connection unless every address it resolves to is
public, and connects to a checked address; httpcore still sends the url's host in `Host` and as the TLS
server name, so certificates are verified against the name. Redirects are never followed and no proxy
from the environment is used. `allow_private` (RELATIONS_WEBHOOK_ALLOW_PRIVATE) lifts the address check,
for development and tests."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import select
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

import httpcore
import httpx

Resolver = Callable[[str, int], Awaitable[list[str]]]


class AddressNotAllowed(httpcore.ConnectError):
    """The host resolves to an address that is not public."""


class AddressRefused(httpx.ConnectError):
    """httpx's form of AddressNotAllowed: the delivery's error names the address."""


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def system_resolver(host: str, port: int) -> list[str]:
    with contextlib.suppress(ValueError):
        return [str(ipaddress.ip_address(host))]  # a literal address needs no lookup
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class CheckedBackend(httpcore.AsyncNetworkBackend):
    """Resolves, checks every address, and connects to a checked one."""

    def __init__(self, *, allow_private: bool, resolver: Resolver = system_resolver) -> None:
        self.allow_private = allow_private
        self.resolver = resolver
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await asyncio.wait_for(self.resolver(host, port), timeout)
        except (OSError, TimeoutError) as error:
            raise httpcore.ConnectError(f"cannot resolve {host}: {error}") from None
        if not addresses:
            raise httpcore.ConnectError(f"{host} resolves to no address")
        if not self.allow_private:
            refused = [address for address in addresses if not is_public(address)]
            if refused:
                raise AddressNotAllowed(f"{host} resolves to {refused[0]}, which is not a public address")
        failure: Exception | None = None
        for address in addresses:
            try:
                stream = await self._inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                failure = error
            else:
                return CheckedStream(stream)
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not webhook targets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class CheckedStream(httpcore.AsyncNetworkStream):
    """httpcore's stream with a cheap idle check: at every request httpcore asks each pooled connection
    whether its server has closed it (`is_readable`), and anyio builds its table of attributes for each
    such question (12 % of the webhook process in a profile under load, with 16 connections). The
    socket is looked up once, and polled as httpcore would."""

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner
        self._socket: socket.socket | None = inner.get_extra_info("socket")

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
    ) -> httpcore.AsyncNetworkStream:
        return CheckedStream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable" and self._socket is not None:
            return readable(self._socket)
        return self._inner.get_extra_info(info)


def readable(sock: socket.socket) -> bool:
    """Whether a read would not block: data, or the peer's close (a closed socket counts as readable,
    so that httpcore drops its connection)."""
    descriptor = sock.fileno()
    if descriptor < 0:
        return True
    poller = select.poll()
    poller.register(descriptor, select.POLLIN)
    return bool(poller.poll(0))


TRANSPORT_ERRORS = (httpcore.TimeoutException, httpcore.NetworkError, httpcore.ProtocolError)


def _to_httpx(error: Exception) -> Exception:
    if isinstance(error, AddressNotAllowed):
        return AddressRefused(str(error))
    if isinstance(error, httpcore.TimeoutException):
        return httpx.TimeoutException(str(error) or "timed out")
    if isinstance(error, httpcore.ConnectError):
        return httpx.ConnectError(str(error) or "connection failed")
    return httpx.TransportError(str(error) or type(error).__name__)


class _Body(httpx.AsyncByteStream):
    def __init__(self, stream: Any) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._stream:
                yield chunk
        except TRANSPORT_ERRORS as error:
            raise _to_httpx(error) from None

    async def aclose(self) -> None:
        await self._stream.aclose()


class CheckedTransport(httpx.AsyncBaseTransport):
    """An httpx transport over an httpcore pool with the checked backend (httpx's own transport takes
    no network backend). No connection limit: one slow receiver must not hold others' connections."""

    def __init__(self, backend: CheckedBackend, ssl_context: ssl.SSLContext | None = None) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context or httpx.create_ssl_context(),
            max_connections=None,
            keepalive_expiry=30,
            network_backend=backend,
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        try:
            response = await self._pool.handle_async_request(core)
        except TRANSPORT_ERRORS as error:
            raise _to_httpx(error) from None
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_Body(response.stream),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


def delivery_client(
    *, allow_private: bool, timeout: float, resolver: Resolver = system_resolver
) -> httpx.AsyncClient:
    """The client every delivery goes through (redirects are not followed: a 3xx is a failed attempt)."""
    transport = CheckedTransport(CheckedBackend(allow_private=allow_private, resolver=resolver))
    return httpx.AsyncClient(transport=transport, timeout=timeout, follow_redirects=False, trust_env=False)
