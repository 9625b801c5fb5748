"""Shared pieces of the HTTP benchmarks: a keep-alive load generator (run in its own process) and
helpers to start and stop servers by pid."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, proc: subprocess.Popen | None = None, timeout: float = 60.0) -> float:
    """Poll ``url`` until it answers; return the seconds it took."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=1)
            return time.perf_counter() - start
        except urllib.error.HTTPError:
            return time.perf_counter() - start
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(url)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def close_nbdeploy() -> None:
    """Close this process's nbdeploy instance and its Dask clients, if it used nbdeploy: before their cluster stops,
    or a client would try to reconnect to it (and print a traceback)."""
    if "nbdeploy" in sys.modules:
        import nbdeploy as nbd

        nbd.default().close()
        nbd.runtime.shutdown()


def post(url: str, body: Any, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, err.read()


@dataclass
class LoadResult:
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


async def _connection(host: str, port: int, request: bytes, deadline: float, lat: list[float], errs: list[int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if length:
                await reader.readexactly(length)
            lat.append(time.perf_counter() - t0)
            if status != 200:
                errs.append(status)
    finally:
        writer.close()


async def _load(url: str, body: bytes, headers: dict[str, str], concurrency: int, duration: float) -> LoadResult:
    rest = url.split("://", 1)[1]
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.partition(":")
    head = [
        f"POST /{path} HTTP/1.1",
        f"Host: {hostport}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
    ]
    head += [f"{k}: {v}" for k, v in headers.items()]
    request = ("\r\n".join(head) + "\r\n\r\n").encode() + body
    lat: list[float] = []
    errs: list[int] = []
    start = time.perf_counter()
    deadline = start + duration
    await asyncio.gather(*[_connection(host, int(port), request, deadline, lat, errs) for _ in range(concurrency)])
    seconds = time.perf_counter() - start
    lat.sort()
    return LoadResult(
        len(lat),
        len(errs),
        seconds,
        statistics.median(lat) * 1000,
        lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000,
    )


def load(url: str, body: Any, headers: dict[str, str], concurrency: int, duration: float) -> LoadResult:
    """Run the load generator in a separate process (so it never shares a GIL with a server under test)."""
    code = (
        "import asyncio, json, sys; sys.path.insert(0, sys.argv[1]); from _http import _load; "
        "a = json.loads(sys.argv[2]); r = asyncio.run(_load(a['url'], a['body'].encode(), a['headers'], "
        "a['c'], a['d'])); print(json.dumps(r.__dict__))"
    )
    args = {"url": url, "body": json.dumps(body), "headers": headers, "c": concurrency, "d": duration}
    out = subprocess.run(
        [sys.executable, "-c", code, os.path.dirname(os.path.abspath(__file__)), json.dumps(args)],
        capture_output=True,
        text=True,
        check=True,
    )
    return LoadResult(**json.loads(out.stdout))


def load_each(
    urls: dict[str, tuple[str, dict[str, str]]], body: Any, duration: float, concurrencies: tuple[int, ...] = (1, 16)
) -> dict[tuple[str, int], LoadResult]:
    """:func:`load` every ``label: (url, headers)`` at each concurrency, side by side (a 1 s warm-up first);
    results by ``(label, concurrency)``."""
    results: dict[tuple[str, int], LoadResult] = {}
    for c in concurrencies:
        for label, (url, headers) in urls.items():
            load(url, body, headers, c, 1.0)  # warm-up
            results[(label, c)] = load(url, body, headers, c, duration)
    return results
