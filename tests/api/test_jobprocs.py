"""The job processes of ``wangge serve --prod`` (:mod:`api.server.jobprocs`), driven without a thread.

The master forks web workers while it runs them: a lock held by a second thread of the
master at that instant stays held in the new worker for ever. The offline-bundle test hung
so: the watchdog thread wrote "job process N started" to a slow log while the master forked a
web worker, which then blocked at its own first log line.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from api.server.jobprocs import JobProcesses
from tests.api.prod_helpers import REPO

#: A child that sleeps until stopped; SIGINT ends it (KeyboardInterrupt), as it ends ``wangge worker``.
SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]


def _until(predicate: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"not true after {timeout} s: {predicate}")


def test_job_processes_are_kept_running_restarted_and_stopped_without_a_thread() -> None:
    threads = threading.active_count()
    jobs = JobProcesses(2, env={}, shutdown_timeout_s=5, command=SLEEPER)
    try:
        jobs.start()
        assert threading.active_count() == threads  # nothing runs beside the master's own loop
        first = jobs.pids()
        assert len(first) == 2 and all(p.poll() is None for p in jobs.children)

        jobs.children[0].send_signal(signal.SIGKILL)
        jobs.children[0].wait()
        jobs.check()  # the arbiter's loop: the dead one is replaced, the other kept
        second = jobs.pids()
        assert len(second) == 2 and first[1] in second and first[0] not in second

        old = list(jobs.children)
        jobs.restart()  # SIGHUP: new ones start first, old ones are asked to finish
        assert len(jobs.pids()) == 2 and not set(jobs.pids()) & {p.pid for p in old}
        _until(lambda: all(p.poll() is not None for p in old))
        # SIGINT (KeyboardInterrupt, or the signal itself before Python set its handler), not a kill
        assert {p.returncode for p in old} <= {1, -signal.SIGINT}, [p.returncode for p in old]
        assert threading.active_count() == threads
    finally:
        jobs.stop()
    assert jobs.pids() == [] and jobs.stopping
    jobs.check()
    assert jobs.pids() == []  # nothing restarts once a stop has begun


@pytest.mark.parametrize("inherited", ["ignored", "blocked"])
def test_job_processes_stop_on_sigint_whatever_the_master_inherited(inherited: str) -> None:
    """A master started in the background by a script ignores SIGINT (and a mask may block it): both
    survive exec, so its job processes ignored a restart's SIGINT and were killed after the timeout."""
    if inherited == "ignored":
        before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    else:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        jobs = JobProcesses(1, env={}, shutdown_timeout_s=5, command=SLEEPER)
        try:
            jobs.start()
            (child,) = jobs.children
            time.sleep(1.0)  # the child's Python is up and sleeping
            jobs.restart()
            _until(lambda: child.poll() is not None, timeout=4.0)  # well before the 5 s kill
            assert child.returncode in (1, -signal.SIGINT), child.returncode
        finally:
            jobs.stop()
    finally:
        if inherited == "ignored":
            signal.signal(signal.SIGINT, before)
        else:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def test_a_job_process_that_cannot_start_is_tried_again_without_taking_the_master_down(
        caplog: pytest.LogCaptureFixture) -> None:
    jobs = JobProcesses(1, env={}, shutdown_timeout_s=5, command=["/nonexistent/wangge", "worker"])
    try:
        jobs.start()  # an OSError here would end gunicorn's loop, and the server with it
        assert jobs.pids() == []
        assert "job process could not be started ([Errno 2] No such file or directory" in caplog.text
        jobs.command = SLEEPER
        jobs.check()
        assert len(jobs.pids()) == 1
    finally:
        jobs.stop()


def test_job_processes_refuse_a_negative_count() -> None:
    with pytest.raises(ValueError, match="job_processes must be 0 or more, got -1; set WANGGE_JOB_PROCESSES=1"):
        JobProcesses(-1, env={}, shutdown_timeout_s=1)


#: The master's start, in a process of its own: stderr is a full pipe (a slow log) drained after
#: 1 s, the job process starts, and gunicorn forks a web worker that writes its first log line.
FORK_AFTER_START = textwrap.dedent("""
    import fcntl, logging, os, sys, threading, time
    from api.server.jobprocs import JobProcesses

    r, w = os.pipe()
    os.dup2(w, 2)
    sys.stderr = open(2, "w", buffering=1, closefd=False)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(message)s")
    flags = fcntl.fcntl(2, fcntl.F_GETFL)
    fcntl.fcntl(2, fcntl.F_SETFL, flags | os.O_NONBLOCK)
    try:
        while True:
            os.write(2, b"#" * 4096)
    except BlockingIOError:
        fcntl.fcntl(2, fcntl.F_SETFL, flags)

    def drain():
        time.sleep(1.0)
        while os.read(r, 65536):
            pass

    threading.Thread(target=drain, daemon=True).start()
    jobs = JobProcesses(1, env=os.environ, shutdown_timeout_s=5,
                        command=[sys.executable, "-c", "import time; time.sleep(60)"])
    jobs.start()
    time.sleep(0.3)  # gunicorn forks its first web worker at once, or a little later
    pid = os.fork()
    if pid == 0:
        logging.getLogger("gunicorn.error").info("Booting worker with pid: %s", os.getpid())
        os._exit(0)
    deadline = time.monotonic() + 10
    while not os.waitpid(pid, os.WNOHANG)[0]:
        if time.monotonic() > deadline:
            wchan = open(f"/proc/{pid}/wchan").read()
            os.kill(pid, 9)
            jobs.stop()
            print(f"the web worker blocked at its first log line (wchan {wchan})", file=sys.__stdout__)
            sys.exit(1)
        time.sleep(0.05)
    jobs.stop()
    print("the web worker logged and exited", file=sys.__stdout__)
""")


@pytest.mark.skipif(sys.platform != "linux", reason="fork and /proc: Linux")
def test_a_web_worker_forked_right_after_a_job_process_starts_is_not_blocked() -> None:
    done = subprocess.run([sys.executable, "-c", FORK_AFTER_START], cwd=REPO, capture_output=True, text=True,
                          timeout=60, check=False)
    assert (done.returncode, done.stdout.strip()) == (0, "the web worker logged and exited"), done.stderr[-2000:]
