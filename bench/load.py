"""HTTP load: wrk (Debian's package) with `load.lua` when it is installed, else a small asyncio load
generator speaking HTTP/1.1 keep-alive over raw sockets with the same request mix."""

from __future__ import annotations

import asyncio
import random
import re
import shutil
import subprocess
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

LUA = Path(__file__).resolve().parent / "load.lua"
UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


@dataclass
class Result:
    name: str
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    tool: str
    raw: str = ""

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("raw")
        return out


@dataclass(frozen=True)
class Load:
    """What to send: `mode` and `args` as load.lua takes them (see its header)."""

    mode: str
    args: tuple[str, ...] = ()

    def script_args(self) -> list[str]:
        return [self.mode, *self.args]


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def _ms(text: str) -> float:
    found = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not found:
        raise ValueError(f"unreadable wrk duration {text!r}")
    return float(found.group(1)) * UNITS[found.group(2)]


def parse_wrk(name: str, output: str) -> Result:
    """Requests/sec, the 50 % and 99 % latencies and every error wrk reports."""
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    latency = dict(re.findall(r"^\s+(50|99)(?:\.000)?%\s+(\S+)\s*$", output, re.MULTILINE))
    total = re.search(r"(\d+) requests in ([\d.]+\w+)", output)
    assert total is not None, output
    errors = 0
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    if non_2xx:
        errors += int(non_2xx.group(1))
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if sockets:
        errors += sum(int(value) for value in sockets.groups())
    return Result(
        name=name,
        requests=int(total.group(1)),
        seconds=_ms(total.group(2)) / 1000,
        rps=rps,
        p50_ms=_ms(latency["50"]) if "50" in latency else float("nan"),
        p99_ms=_ms(latency["99"]) if "99" in latency else float("nan"),
        errors=errors,
        tool="wrk",
        raw=output,
    )


def run_wrk(
    name: str,
    base_url: str,
    load: Load,
    *,
    headers: dict[str, str],
    duration: float,
    conns: int,
    warmup: float,
) -> Result:
    header_args = [arg for key, value in headers.items() for arg in ("-H", f"{key}: {value}")]

    def wrk(seconds: float) -> str:
        command = [
            "wrk", "-t1", f"-c{conns}", f"-d{max(round(seconds), 1)}s", "--latency", "--timeout", "10s",
            *header_args, "-s", str(LUA), base_url, "--", *load.script_args(),
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
        return done.stdout

    if warmup > 0:
        wrk(warmup)
    return parse_wrk(name, wrk(duration))


# The Python load generator: the same requests as load.lua.


def _lines(path: str) -> list[str]:
    return [line for line in Path(path).read_text().splitlines() if line]


class Requests:
    def __init__(self, load: Load) -> None:
        self.mode = load.mode
        args = load.args
        self.paths = _lines(args[0]) if self.mode in ("paths", "mixed", "mix90") else []
        self.type_alias = args[0] if self.mode == "post" and args else "umbDocument"
        self.lists: list[str] = []
        if self.mode in ("connect", "set"):
            self.lists = _lines(args[0])
        if self.mode == "mixed" and len(args) > 1 and args[1] != "-":
            self.lists = _lines(args[1])
        self.set_size = int(args[1]) if self.mode == "set" and len(args) > 1 else 1000

    def next(self) -> tuple[str, str, bytes | None]:
        mode = self.mode
        if mode == "mixed":
            roll = random.random()
            mode = "paths" if roll < 0.7 else "post" if roll < 0.9 or not self.lists else "connect"
        if mode == "mix90":
            if random.random() < 0.9:
                return "GET", random.choice(self.paths), None
            return "PUT", random.choice(self.paths), orjson.dumps({"comment": str(uuid.uuid4())})
        if mode == "paths":
            return "GET", random.choice(self.paths), None
        if mode == "post":
            body = {
                "parentId": str(uuid.uuid4()),
                "childId": str(uuid.uuid4()),
                "relationTypeAlias": self.type_alias,
            }
            return "POST", "/relation", orjson.dumps(body)
        if mode == "connect":
            body_c = {"connect": [{"id": str(uuid.uuid4()), "position": {"start": True}}]}
            return "PATCH", random.choice(self.lists), orjson.dumps(body_c)
        body_s = {"set": [str(uuid.uuid4()) for _ in range(self.set_size)]}
        return "PUT", random.choice(self.lists), orjson.dumps(body_s)


async def _connection(
    host: str, port: int, headers: bytes, requests: Requests, until: float, record_from: float, out: list[Any]
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while (now := time.monotonic()) < until:
            method, path, body = requests.next()
            head = f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\n".encode() + headers
            if body is not None:
                head += b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
            writer.write(head + b"\r\n" + (body or b""))
            response = await reader.readuntil(b"\r\n\r\n")
            status = int(response[9:12])
            length = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", response)
            if length:
                await reader.readexactly(int(length.group(1)))
            if now >= record_from:
                out.append((time.monotonic() - now, status))
    finally:
        writer.close()


def run_python(
    name: str,
    base_url: str,
    load: Load,
    *,
    headers: dict[str, str],
    duration: float,
    conns: int,
    warmup: float,
) -> Result:
    host, port = base_url.removeprefix("http://").rstrip("/").split(":")
    encoded = "".join(f"{key}: {value}\r\n" for key, value in headers.items()).encode()
    samples: list[tuple[float, int]] = []
    requests = Requests(load)

    async def main() -> None:
        start = time.monotonic()
        until = start + warmup + duration
        await asyncio.gather(
            *(
                _connection(host, int(port), encoded, requests, until, start + warmup, samples)
                for _ in range(conns)
            )
        )

    asyncio.run(main())
    latencies = sorted(sample[0] for sample in samples) or [0.0]
    errors = sum(1 for sample in samples if not 200 <= sample[1] < 400)

    def quantile(q: float) -> float:
        return latencies[min(int(q * len(latencies)), len(latencies) - 1)] * 1000

    return Result(
        name=name,
        requests=len(samples),
        seconds=duration,
        rps=len(samples) / duration,
        p50_ms=quantile(0.5),
        p99_ms=quantile(0.99),
        errors=errors,
        tool="python",
    )


def run(
    name: str,
    base_url: str,
    load: Load,
    *,
    headers: dict[str, str],
    duration: float,
    conns: int = 32,
    warmup: float = 2,
    tool: str = "auto",
) -> Result:
    use_wrk = tool == "wrk" or (tool == "auto" and have_wrk())
    runner = run_wrk if use_wrk else run_python
    return runner(name, base_url, load, headers=headers, duration=duration, conns=conns, warmup=warmup)
