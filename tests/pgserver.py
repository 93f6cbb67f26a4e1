"""A throwaway PostgreSQL server (Debian's packages) for tests and benches: private port, loopback, fsync off.

``initdb`` refuses to run as root, so as root the cluster belongs to the ``postgres`` user.
Test data only: ``fsync=off``. ``scripts/pg-test.sh`` does the same from the shell for a
whole test run.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

__all__ = ["server_bin", "start_server", "stop_server"]


def server_bin() -> Path | None:
    """Folder of the newest installed PostgreSQL server binaries, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


def _run(cmd: list[str]) -> None:
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)


def start_server(folder: Path, port: int) -> str:
    """Initialise and start a cluster in *folder* on 127.0.0.1:*port*; the SQLAlchemy URL of its ``postgres`` db.

    Raises
    ------
    RuntimeError
        The server binaries are not installed (the message names the packages).
    """
    bindir = server_bin()
    if bindir is None:
        raise RuntimeError("PostgreSQL server not installed: apt-get install postgresql postgresql-15-postgis-3 "
                           "(scripts/system-deps.sh)")
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
    _run([str(bindir / "initdb"), "-D", str(folder / "data"), "-A", "trust", "-U", "postgres", "-E", "UTF8"])
    _run([str(bindir / "pg_ctl"), "-D", str(folder / "data"), "-l", str(folder / "log"), "-w", "start", "-o",
          f"-k {folder} -p {port} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
          "-c full_page_writes=off -c max_connections=400"])
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"


def stop_server(folder: Path) -> None:
    """Stop the cluster in *folder* and delete it."""
    bindir = server_bin()
    if bindir is not None and (folder / "data").exists():
        try:
            _run([str(bindir / "pg_ctl"), "-D", str(folder / "data"), "-m", "fast", "-w", "stop"])
        except subprocess.CalledProcessError:
            pass
    shutil.rmtree(folder, ignore_errors=True)
