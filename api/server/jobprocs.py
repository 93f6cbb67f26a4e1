"""The background job processes ``wangge serve --prod`` runs beside its web workers.

Each is a ``wangge worker`` child (the same Huey consumer as a stand-alone worker). The
server's master starts them, starts a new one when one dies, and on a restart (SIGHUP)
starts the new ones first and then asks the old ones to stop gracefully (SIGINT: running
jobs finish, within ``job_shutdown_timeout_s``), so jobs keep being taken throughout. On
stop (SIGTERM) every job process stops gracefully; queued jobs stay in the queue for the
next start. The children run in their own session (a terminal's Ctrl+C reaches only the
master, which decides) and die with the master (``PR_SET_PDEATHSIG``: a ``kill -9`` of the
master leaves no job process behind; their running jobs are then marked failed at the next
start, as for any crash).

No thread: all of it runs in the master's main thread, called from gunicorn's arbiter loop
(:meth:`JobProcesses.check` about every second and on SIGCHLD). The master forks web
workers at any moment (start, a dead worker, SIGHUP), and ``fork`` copies only the forking
thread: a lock another thread of the master holds at that instant stays held forever in the
new worker. A watchdog thread did exactly that: while it wrote "job process N started" to
the log, it held the lock of the master's stderr buffer; a web worker forked in that
instant blocked at its first log line ("Booting worker") and never served (the offline
bundle test hung so). Before it, the same thread's ``Popen`` exec pipe, inherited by a
worker forked mid-``Popen``, stalled the start for 19 s. One thread has no such instant.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence

__all__ = ["WORKER_COMMAND", "JobProcesses"]

log = logging.getLogger(__name__)

#: How a job process is started: ``wangge worker`` of this interpreter.
WORKER_COMMAND: tuple[str, ...] = (sys.executable, "-c", "from api.cli import main; main()", "worker")
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_LIBC = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True) if sys.platform == "linux" else None
#: Seconds a stop waits beyond ``shutdown_timeout_s`` (the consumer's own timeout comes first).
_STOP_MARGIN_S = 10.0


#: Signals a job process is stopped by: never inherited ignored or blocked from the master.
_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def _child_setup() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Die with the master, and take SIGINT / SIGTERM as a fresh process does.

    An ignored disposition and a blocked mask survive ``exec``: a master started in the
    background by a script ignores SIGINT (POSIX shells do that to background jobs), and its
    job processes then never finished on a restart's SIGINT; they were killed after the timeout.
    """
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
    for signum in _STOP_SIGNALS:
        signal.signal(signum, signal.SIG_DFL)


class JobProcesses:
    """*count* job processes kept running by the master's own loop (see the module doc).

    Every method is called from the master's main thread: :meth:`start` when the server is
    ready, :meth:`check` from the arbiter's loop, :meth:`restart` on SIGHUP,
    :meth:`begin_stop` and :meth:`stop` on the way out.

    Parameters
    ----------
    count
        Job processes to keep running (setting ``job_processes``).
    env
        Environment of the children (``WANGGE_JOBS_IN_PROCESS=false`` is added, and
        ``PYTHONFAULTHANDLER=1``: ``kill -ABRT`` of a job process writes its stacks to the log).
    shutdown_timeout_s
        How long a stop waits for running jobs before it kills (setting ``job_shutdown_timeout_s``).
    command
        The child's command line (default :data:`WORKER_COMMAND`).
    """

    def __init__(self, count: int, *, env: Mapping[str, str], shutdown_timeout_s: float,
                 command: Sequence[str] = WORKER_COMMAND) -> None:
        if count < 0:
            raise ValueError(f"job_processes must be 0 or more, got {count}; set WANGGE_JOB_PROCESSES=1")
        self.count, self.shutdown_timeout_s = count, float(shutdown_timeout_s)
        self.command = list(command)
        self.env = {**env, "WANGGE_JOBS_IN_PROCESS": "false", "PYTHONFAULTHANDLER": "1"}
        self.children: list[subprocess.Popen[bytes]] = []
        self._retiring: list[subprocess.Popen[bytes]] = []
        self._started = False
        self._stop_deadline: float | None = None

    @property
    def stopping(self) -> bool:
        """Whether a stop has begun (no child is started any more)."""
        return self._stop_deadline is not None

    def start(self) -> None:
        """Start the children (idempotent)."""
        self._started = True
        self.check()

    def check(self) -> None:
        """Collect exited children and start one for each that is missing (quick; the arbiter's loop)."""
        self.reap()
        self._retiring = [p for p in self._retiring if p.returncode is None]
        if not self._started or self.stopping:
            return
        for proc in [p for p in self.children if p.returncode is not None]:
            log.warning("job process %d exited (%s): starting another", proc.pid, proc.returncode)
            self.children.remove(proc)
        self._fill()

    def reap(self) -> None:
        """Take the exit status of every child that ended (before gunicorn's ``waitpid(-1)`` takes it)."""
        for proc in self.children + self._retiring:
            proc.poll()

    def restart(self) -> None:
        """Replace every child: new ones start now, old ones finish their jobs and exit."""
        if not self._started or self.stopping:
            return
        old, self.children = self.children, []
        self._fill()
        for proc in old:
            _signal(proc, signal.SIGINT)
        self._retiring += old
        log.info("job processes restarted: %s replace %s", self.pids(), [p.pid for p in old])

    def pids(self) -> list[int]:
        """Process ids of the current children."""
        return [c.pid for c in self.children if c.poll() is None]

    def begin_stop(self) -> None:
        """Ask every child to stop gracefully (SIGINT; returns at once; idempotent)."""
        if self.stopping:
            return
        self._stop_deadline = time.monotonic() + self.shutdown_timeout_s + _STOP_MARGIN_S
        for proc in self.children + self._retiring:
            _signal(proc, signal.SIGINT)

    def stop(self) -> None:
        """Stop every child gracefully and wait (children still running after ``shutdown_timeout_s`` are killed)."""
        self.begin_stop()
        assert self._stop_deadline is not None
        procs = self.children + self._retiring
        for proc in procs:
            try:
                proc.wait(timeout=max(self._stop_deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                log.error("job process %d did not stop in %.0f s: killed", proc.pid, self.shutdown_timeout_s)
                proc.kill()
                proc.wait()
        if procs:
            log.info("job processes stopped: %s", [p.pid for p in procs])
        self.children, self._retiring = [], []

    def _fill(self) -> None:
        # A child that cannot start (no memory, no such program) must not take the master down:
        # the next check (about a second later) tries again.
        try:
            while len(self.children) < self.count:
                self.children.append(self._spawn())
        except OSError as exc:
            log.error("job process could not be started (%s): trying again at the next check", exc)

    def _spawn(self) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(self.command, env=self.env, start_new_session=True,  # noqa: S603
                                preexec_fn=_child_setup)  # noqa: PLW1509 - prctl only, no locks
        log.info("job process %d started", proc.pid)
        return proc


def _signal(proc: subprocess.Popen[bytes], signum: int) -> None:
    if proc.poll() is not None:
        return
    try:
        os.kill(proc.pid, signum)
    except ProcessLookupError:
        pass
