"""An open-loop HTTP load generator for the loopback benches (``incidents.py``, ``patrol.py``).

Request *i* is due at ``start + i / rate`` whatever happened to the requests before it (open
loop: a slow answer never delays the next send), and its latency is measured **from the time
it was due**, not from when it was sent, so a client that falls behind cannot hide the wait
(no coordinated omission). One asyncio loop in one thread sends everything: no thread per
request, so the client takes little of the CPU it shares with the server; its own CPU time is
measured and reported.

Each request opens its own connection by default (``Connection: close``), as tracker apps
and most HTTP clients calling in from the internet do, and as nginx talks to its upstream
unless told otherwise; ``keep_alive=True`` reuses idle connections.
"""

from __future__ import annotations

import asyncio
import resource
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Request", "Result", "Run", "run", "summary"]


@dataclass(frozen=True)
class Request:
    """One HTTP request to send (a form body is bytes with its content type)."""

    method: str
    path: str
    body: bytes = b""
    content_type: str = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class Result:
    """What came back for request *i* (``status`` 0 and ``error`` set when nothing did)."""

    i: int
    status: int
    latency_ms: float
    late_ms: float
    body: bytes = b""
    error: str | None = None


@dataclass
class Run:
    """Every result of one run, the client's CPU seconds and the wall seconds it took."""

    results: list[Result] = field(default_factory=list)
    client_cpu_s: float = 0.0
    wall_s: float = 0.0


class _Pool:
    """Idle keep-alive connections (used only with ``keep_alive=True``)."""

    def __init__(self) -> None:
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """Status, body and whether the server keeps the connection open."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    keep = headers.get("connection", "").lower() != "close" and lines[0].startswith("HTTP/1.1")
    if "content-length" in headers:
        return status, await reader.readexactly(int(headers["content-length"])), keep
    if headers.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            chunks.append(await reader.readexactly(size + 2))
            if size == 0:
                return status, b"".join(c[:-2] for c in chunks), keep
    return status, await reader.read(), False


async def _exchange(host: str, port: int, req: Request, pool: _Pool | None) -> tuple[int, bytes]:
    conn = None
    while pool is not None and pool.idle:
        reader, writer, since = pool.idle.pop()
        if time.monotonic() - since < 1.0 and not reader.at_eof():  # gunicorn drops idle ones after 2 s
            conn = reader, writer
            break
        writer.close()
    reader, writer = conn or await asyncio.open_connection(host, port)
    head = [f"{req.method} {req.path} HTTP/1.1", f"Host: {host}:{port}",
            f"Connection: {'keep-alive' if pool is not None else 'close'}"]
    if req.body or req.method == "POST":
        head += [f"Content-Type: {req.content_type}", f"Content-Length: {len(req.body)}"]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + req.body)
    try:
        status, body, keep = await _read_response(reader)
    except BaseException:
        writer.close()
        raise
    if pool is not None and keep:
        pool.idle.append((reader, writer, time.monotonic()))
    else:
        writer.close()
    return status, body


async def _one(i: int, due: float, host: str, port: int, req: Request, timeout: float, pool: _Pool | None,
               out: list[Result]) -> None:
    loop = asyncio.get_running_loop()
    late = (loop.time() - due) * 1000
    try:
        status, body = await asyncio.wait_for(_exchange(host, port, req, pool), timeout)
    except Exception as exc:  # noqa: BLE001 - every failure is a counted error, by kind
        out.append(Result(i, 0, (loop.time() - due) * 1000, late, error=type(exc).__name__ or "error"))
        return
    out.append(Result(i, status, (loop.time() - due) * 1000, late, body))


async def _schedule(host: str, port: int, make: Callable[[int], Request], rate: float, seconds: float,
                    timeout: float, keep_alive: bool, stop: threading.Event | None, out: list[Result]) -> None:
    loop = asyncio.get_running_loop()
    pool = _Pool() if keep_alive else None
    start = loop.time() + 0.05
    tasks = set()
    for i in range(int(rate * seconds)):
        due = start + i / rate
        if due > loop.time():
            await asyncio.sleep(due - loop.time())
        if stop is not None and stop.is_set():
            break
        task = asyncio.create_task(_one(i, due, host, port, make(i), timeout, pool, out))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(tasks)
    for _, writer, _ in pool.idle if pool else ():
        writer.close()


def run(host: str, port: int, make: Callable[[int], Request], *, rate: float, seconds: float, timeout: float = 10.0,
        keep_alive: bool = False, stop: threading.Event | None = None) -> Run:
    """Send ``rate * seconds`` requests made by *make(i)* at fixed times; every result and the client's CPU.

    *stop* ends the sending early (requests already sent are still awaited).
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:  # a stalled server can have (rate x timeout) connections open at once
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    out: list[Result] = []
    c0, t0 = time.thread_time(), time.perf_counter()
    asyncio.run(_schedule(host, port, make, rate, seconds, timeout, keep_alive, stop, out))
    return Run(sorted(out, key=lambda r: r.i), time.thread_time() - c0, time.perf_counter() - t0)


def summary(done: Run, *, ok: Callable[[Result], bool] = lambda r: 200 <= r.status < 300) -> dict[str, Any]:
    """Requests, errors (by kind), latency percentiles from the due time (ms), client CPU per request."""
    good = [r for r in done.results if ok(r)]
    bad = Counter(r.error or f"HTTP {r.status}" for r in done.results if not ok(r))
    lat = np.array([r.latency_ms for r in done.results]) if done.results else np.array([np.nan])
    late = np.array([r.late_ms for r in done.results]) if done.results else np.array([np.nan])
    p = np.percentile(lat, [50, 90, 99, 99.9])
    n = max(len(done.results), 1)
    return {"requests": len(done.results), "ok": len(good), "errors": sum(bad.values()), "error_kinds": dict(bad),
            "p50_ms": round(float(p[0]), 1), "p90_ms": round(float(p[1]), 1), "p99_ms": round(float(p[2]), 1),
            "p99.9_ms": round(float(p[3]), 1), "max_ms": round(float(lat.max()), 1),
            "send_late_p99_ms": round(float(np.percentile(late, 99)), 1),
            "client_cpu_ms_per_request": round(done.client_cpu_s * 1000 / n, 3),
            "client_cpu_share": round(done.client_cpu_s / max(done.wall_s, 1e-9), 3)}
