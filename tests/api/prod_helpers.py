"""Run ``wangge serve --prod`` as a real child process on a free loopback port (tests only)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
import requests

__all__ = ["REPO", "ProdServer", "diagnosed", "family", "free_port", "server_env", "stall_report"]

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(tmp: Path, database_url: str, **settings: Any) -> dict[str, str]:
    """The environment of a server on the instance folder ``tmp/instance`` and *database_url*."""
    env = {**os.environ, "WANGGE_SECRET_KEY": "test-secret", "WANGGE_INSTANCE_PATH": str(tmp / "instance"),
           "WANGGE_DATABASE_URL": database_url, "PYTHONPATH": str(REPO), "WANGGE_JOB_POLL_S": "0.2",
           "WANGGE_JOB_PROGRESS_EVERY_S": "0", "WANGGE_SERVER_THREADS": "2",
           "WANGGE_SERVER_GRACEFUL_TIMEOUT_S": "10"}
    env.update({f"WANGGE_{k.upper()}": str(v) for k, v in settings.items()})
    return env


class ProdServer:
    """``wangge serve --prod`` with *args*; its stderr (the log) goes to a file read by :meth:`log`."""

    def __init__(self, env: dict[str, str], *args: str, scheme: str = "http") -> None:
        self.port = free_port()
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self._log = tempfile.NamedTemporaryFile(prefix="wangge-prod-", suffix=".log", delete=False)  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from api.cli import main; main()", "serve", "--prod", "--port", str(self.port),
             *args], cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def wait_ready(self, *, timeout: float = 90.0, **kwargs: Any) -> None:
        """Wait until ``/readyz`` answers 200; after *timeout*, fail with the log and every process's stacks."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}:\n{self.text()[-3000:]}")
            try:
                if requests.get(f"{self.url}/readyz", timeout=5, **kwargs).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise AssertionError(f"server not ready after {timeout} s:\n{self.dump()}")

    def wait_exit(self, timeout: float) -> int:
        """The master's exit code; if it is still running after *timeout*, fail with its stacks."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"server still running {timeout} s after it was told to stop:\n"
                                 f"{self.dump()}") from None

    def dump(self) -> str:
        """Where every process of the server is stuck: kernel wait channel and stack, then each
        one's Python stacks (SIGABRT: faulthandler writes them to the log, and the process ends)."""
        return stall_report(self.proc.pid) + "\n--- server log (stacks at the end) ---\n" + self.text()[-12000:]

    def children(self) -> list[psutil.Process]:
        """Web worker and job processes (the master's children)."""
        return psutil.Process(self.proc.pid).children()

    def _live(self) -> dict[int, list[str]]:
        """Command lines of the live children (exited ones not yet reaped left out)."""
        out = {}
        for p in self.children():
            try:
                out[p.pid] = p.cmdline()
            except (psutil.ZombieProcess, psutil.NoSuchProcess):
                continue
        return out

    def job_pids(self) -> set[int]:
        return {pid for pid, cmd in self._live().items() if "worker" in cmd}

    def web_pids(self) -> set[int]:
        return {pid for pid, cmd in self._live().items() if "worker" not in cmd}

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def stop(self, *, timeout: float = 60.0) -> int:
        """SIGTERM and wait; the exit code (after *timeout*, fail with the stacks)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.wait_exit(timeout)
        finally:
            self.kill()

    def kill(self) -> None:
        """Kill the master and every child left (test clean-up)."""
        for p in family(self.proc.pid):
            _send(p, signal.SIGKILL)
        self.proc.wait()
        self._log.close()

    def text(self) -> str:
        self._log.flush()
        return Path(self._log.name).read_text(encoding="utf-8", errors="replace")

    def log(self) -> list[dict[str, Any]]:
        """The JSON log lines written so far (other lines skipped)."""
        out = []
        for line in self.text().splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue
        return out


@contextmanager
def diagnosed(*servers: ProdServer) -> Iterator[None]:
    """A request to *servers* that times out fails with their logs and stacks, not only the timeout."""
    try:
        yield
    except requests.Timeout as exc:
        dumps = "\n".join(f"=== server {s.url} ===\n{s.dump()}" for s in servers)
        raise AssertionError(f"a server did not answer in time ({exc}):\n{dumps}") from exc


def stall_report(pid: int) -> str:
    """Where process *pid* and its descendants are stuck: each thread's kernel wait channel and
    stack, then SIGABRT to each (a Wangge process writes its Python stacks to its log and ends)."""
    procs = family(pid)
    kernel = [_kernel_state(p) for p in procs]
    for p in procs:
        _send(p, signal.SIGABRT)
    psutil.wait_procs(procs, timeout=5)
    return "\n".join(kernel)


def family(pid: int) -> list[psutil.Process]:
    """The process *pid* and its descendants (job processes run in their own session, still children)."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _send(p: psutil.Process, signum: int) -> None:
    try:
        p.send_signal(signum)
    except psutil.NoSuchProcess:
        pass


def _kernel_state(p: psutil.Process) -> str:
    """pid, command, state, wait channel and kernel stack of every thread of *p* (Linux)."""
    try:
        head = f"--- pid {p.pid} {' '.join(p.cmdline())[:160]} ({p.status()})"
    except psutil.Error:
        return f"--- pid {p.pid}: gone"
    lines = [head]
    for task in sorted(Path(f"/proc/{p.pid}/task").glob("*")):
        wchan = _read(task / "wchan")
        stack = " < ".join(line.split("] ", 1)[-1].split("+")[0] for line in _read(task / "stack").splitlines()[:6])
        lines.append(f"    thread {task.name} {_read(task / 'comm').strip()}: wchan {wchan or '-'}; {stack}")
    return "\n".join(lines)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
