"""The background job processes ``wangge serve --prod`` runs beside its web workers.

Each is a ``wangge worker`` child (the same Huey consumer as a stand-alone worker). A
watchdog thread of the server's master process starts them, starts a new one when one
dies, and on a restart (SIGHUP) starts the new ones first and then asks the old ones to
stop gracefully (SIGINT: running jobs finish, within ``job_shutdown_timeout_s``), so jobs
keep being taken throughout. On stop (SIGTERM) every job process stops gracefully; queued
jobs stay in the queue for the next start. The children run in their own session (a
terminal's Ctrl+C reaches only the master, which decides) and die with the master
(``PR_SET_PDEATHSIG``: a ``kill -9`` of the master leaves no job process behind; their
running jobs are then marked failed at the next start, as for any crash).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence

__all__ = ["WORKER_COMMAND", "JobProcesses"]

log = logging.getLogger(__name__)

#: How a job process is started: ``wangge worker`` of this interpreter.
WORKER_COMMAND: tuple[str, ...] = (sys.executable, "-c", "from api.cli import main; main()", "worker")
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_LIBC = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True) if sys.platform == "linux" else None


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class JobProcesses:
    """*count* job processes kept running by a watchdog thread (see the module doc).

    Parameters
    ----------
    count
        Job processes to keep running (setting ``job_processes``).
    env
        Environment of the children (``WANGGE_JOBS_IN_PROCESS=false`` is added).
    shutdown_timeout_s
        How long a stop waits for running jobs before it kills (setting ``job_shutdown_timeout_s``).
    command
        The child's command line (default :data:`WORKER_COMMAND`).
    poll_s
        How often the watchdog looks at its children (s).
    """

    def __init__(self, count: int, *, env: Mapping[str, str], shutdown_timeout_s: float,
                 command: Sequence[str] = WORKER_COMMAND, poll_s: float = 0.5) -> None:
        if count < 0:
            raise ValueError(f"job_processes must be 0 or more, got {count}; set WANGGE_JOB_PROCESSES=1")
        self.count, self.shutdown_timeout_s, self.poll_s = count, float(shutdown_timeout_s), poll_s
        self.command = list(command)
        self.env = {**env, "WANGGE_JOBS_IN_PROCESS": "false"}
        self.children: list[subprocess.Popen[bytes]] = []
        self._retiring: list[subprocess.Popen[bytes]] = []
        self._restart = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        #: held while a child is started; whoever else forks in this process holds it too
        self.fork_lock = threading.Lock()

    def start(self) -> None:
        """Start the watchdog thread, which starts the children (idempotent)."""
        if self._thread is None and self.count > 0:
            self._thread = threading.Thread(target=self._watch, name="wangge-jobprocs", daemon=True)
            self._thread.start()

    def restart(self) -> None:
        """Replace every child: new ones start, old ones finish their jobs and exit (safe in a signal handler)."""
        self._restart.set()

    def pids(self) -> list[int]:
        """Process ids of the current children."""
        return [c.pid for c in self.children if c.poll() is None]

    def begin_stop(self) -> None:
        """Ask the watchdog to stop every child gracefully (returns at once; idempotent)."""
        self._stopping.set()

    def stop(self) -> None:
        """Stop every child gracefully and wait (children still running after ``shutdown_timeout_s`` are killed)."""
        self.begin_stop()
        if self._thread is not None:
            self._thread.join()

    def _spawn(self) -> subprocess.Popen[bytes]:
        # Under fork_lock: a process forked while Popen waits for its child's exec would inherit
        # the pipe Popen waits on and block it until that process ends (gunicorn's web workers).
        with self.fork_lock:
            proc = subprocess.Popen(self.command, env=self.env, start_new_session=True,  # noqa: S603
                                    preexec_fn=_die_with_parent)  # noqa: PLW1509 - prctl only, no locks
        log.info("job process %d started", proc.pid)
        return proc

    def _watch(self) -> None:
        # Every child is started, and waited for, by this one thread: PR_SET_PDEATHSIG fires when
        # the *thread* that forked a child ends, so the thread outlives its children.
        while not self._stopping.is_set():
            if self._restart.is_set():
                self._restart.clear()
                old, self.children = self.children, [self._spawn() for _ in range(self.count)]
                for proc in old:
                    _signal(proc, signal.SIGINT)
                self._retiring += old
                log.info("job processes restarted: %s replace %s", self.pids(), [p.pid for p in old])
            for i, proc in enumerate(self.children):
                if proc.poll() is not None:
                    log.warning("job process %d exited (%s): starting another", proc.pid, proc.returncode)
                    self.children[i] = self._spawn()
            while len(self.children) < self.count:
                self.children.append(self._spawn())
            self._retiring = [p for p in self._retiring if p.poll() is None]
            self._stopping.wait(self.poll_s)
        self._drain()

    def _drain(self) -> None:
        procs = [c for c in self.children + self._retiring if c.poll() is None]
        for proc in procs:
            _signal(proc, signal.SIGINT)
        deadline = time.monotonic() + self.shutdown_timeout_s + 10  # the consumer's own timeout comes first
        for proc in procs:
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                log.error("job process %d did not stop in %.0f s: killed", proc.pid, self.shutdown_timeout_s)
                proc.kill()
                proc.wait()
        log.info("job processes stopped: %s", [p.pid for p in procs])


def _signal(proc: subprocess.Popen[bytes], signum: int) -> None:
    if proc.poll() is not None:
        return
    try:
        os.kill(proc.pid, signum)
    except ProcessLookupError:
        pass
