"""The app served for a loopback bench: ``wangge serve --prod`` (gunicorn, as deployed) or the dev server.

The server runs in its own process group (``kill -9`` of the group is a crash of the whole
server) with the workspace of *folder* (``instance/`` and ``wangge.db`` in it). Worker
processes and threads come from the settings ``server_workers`` / ``server_threads`` unless
given; the CPU seconds the server's processes used are read from ``/proc`` when it stops.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Server", "free_port", "start", "stop"]

REPO = Path(__file__).resolve().parents[1]
_TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Server:
    """A started server: its process, port and how it was started."""

    proc: subprocess.Popen[bytes]
    port: int
    shape: str

    def cpu_s(self, *, system: bool = True) -> float:
        """CPU seconds of every live process of the server's group (master and web workers); user only unless *system*."""
        total = 0
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == self.proc.pid:  # process group id
                total += int(fields[11]) + (int(fields[12]) if system else 0)  # utime + stime
        return total / _TICK


def free_port() -> int:
    """A free loopback TCP port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _command(port: int, server: str, workers: int | None) -> list[str]:
    cli = [sys.executable, "-c", "from api.cli import main; main()", "serve", "--host", "127.0.0.1", "--port", str(port)]
    if server == "prod":
        return [*cli, "--prod", *(["--workers", str(workers)] if workers else [])]
    return cli


def start(folder: Path, *, server: str = "prod", workers: int | None = None, threads: int | None = None,
          probe: str = "/healthz", env: dict[str, str] | None = None) -> Server:
    """Start the server on *folder*'s workspace and wait until *probe* answers."""
    port = free_port()
    environ = {**os.environ, "WANGGE_SECRET_KEY": "bench", "WANGGE_INSTANCE_PATH": str(folder / "instance"),
               "WANGGE_DATABASE_URL": f"sqlite:///{folder / 'wangge.db'}", "PYTHONPATH": str(REPO), **(env or {})}
    if threads:
        environ["WANGGE_SERVER_THREADS"] = str(threads)
    # Own process group: kill -9 takes the whole server (master and workers), as a crash would.
    proc = subprocess.Popen(_command(port, server, workers), env=environ, cwd=str(REPO), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    shape = "dev server" if server != "prod" else (
        f"serve --prod {workers or 'server_workers'} x {threads or 'server_threads'} threads")
    for _ in range(1200):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}{probe}", timeout=2).read()
            return Server(proc, port, shape)
        except (urllib.error.URLError, ConnectionError, OSError):
            if proc.poll() is not None:
                break
            time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    raise RuntimeError(f"the server ({shape}) did not start")


def stop(server: Server, *, kill: bool = False) -> None:
    """SIGTERM the server's group (drains) and wait; ``kill=True``: SIGKILL, a crash."""
    os.killpg(server.proc.pid, signal.SIGKILL if kill else signal.SIGTERM)
    server.proc.wait(timeout=60)
    if kill:  # job processes die with the master (PR_SET_PDEATHSIG); make sure none is left
        try:
            os.killpg(server.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
