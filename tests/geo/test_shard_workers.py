"""Shard workers die with the process that started them (issue 16 §9).

A child Python process runs a sharded partition (small shards force the process pool);
once its workers are up it is killed with SIGKILL, as an OOM killer or ``kill -9`` would.
Nothing it started — forkserver, resource tracker, pool workers — may outlive it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Seconds the descendants get to notice their parent is gone.
GRACE_S = 8.0

_SCRIPT = textwrap.dedent("""
    from geo.partition import partition_grids
    from geo.synthetic import synthetic_district

    if __name__ == "__main__":
        d = synthetic_district(3000, seed=11)
        print("ready", flush=True)
        for _ in range(100):  # long enough to be killed mid-run
            partition_grids(d.buildings, d.communities, streets=d.streets, compounds=d.compounds,
                            shard_buildings=300, workers=2)
""")


def _wait_for_workers(proc: psutil.Process, timeout: float) -> list[psutil.Process]:
    """Descendants of *proc* once at least two pool workers (beyond forkserver/tracker) exist."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        kids = proc.children(recursive=True)
        if len(kids) >= 4:  # forkserver, resource tracker and >= 2 workers
            time.sleep(0.5)
            return proc.children(recursive=True)
        time.sleep(0.1)
    raise AssertionError(f"no pool workers after {timeout} s: {proc.children(recursive=True)}")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="kill -9 semantics checked on Linux")
def test_kill_9_of_the_parent_leaves_no_worker_running(tmp_path: Path) -> None:
    script = tmp_path / "run_partition.py"
    script.write_text(_SCRIPT)
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen([sys.executable, str(script)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    kids: list[psutil.Process] = []
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        kids = _wait_for_workers(psutil.Process(proc.pid), timeout=120)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        gone, alive = psutil.wait_procs(kids, timeout=GRACE_S)
        survivors = [(p.pid, _cmdline(p)) for p in alive]
        assert not survivors, f"{len(survivors)} process(es) outlived their killed parent: {survivors}"
        assert len(gone) == len(kids)
    finally:
        if proc.poll() is None:
            proc.kill()
        if proc.stdout is not None:
            proc.stdout.close()
        for p in kids:  # orphans (a failed run) are reparented: kill them by the pids we saw
            try:
                p.kill()
            except psutil.Error:
                pass


def _cmdline(p: psutil.Process) -> str:
    try:
        return " ".join(p.cmdline())[:120]
    except psutil.Error:
        return "?"
