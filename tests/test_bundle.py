"""The offline bundle (issue 17 §4): ``scripts/bundle.py`` builds it here, then, in a network
namespace with no network at all (``unshare -n``: only a loopback), it is installed into a
fresh virtual environment with ``pip --no-index`` and no npm, builds the demo and serves it;
the app answers ``/`` and an API call on the demo data.

It needs a package index to build the bundle (pip's cache makes later builds quick) and root
for ``unshare -n``; it is skipped, saying why, where either is missing. ``make test`` runs it
once, in its SQLite pass; ``make test-bundle`` runs it alone; ``-m "not slow"`` leaves it out.
Every step is bounded: a stall fails with the server's log and the stacks of its processes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import psutil
import pytest

from tests.api.prod_helpers import family, stall_report

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

pytestmark = pytest.mark.slow

#: Bounds of each step (s), far above what they take on a loaded 2-core CI machine (install
#: about 90 s, demo and partition about 20 s each, serve and smoke checks about 10 s): a stall
#: fails the test with the server's log and every process's stacks instead of hanging CI.
BUILD_S, STEP_S, SMOKE_S, STOP_S = 900, 600, 300, 120
TOTAL_S = 3 * STEP_S + SMOKE_S + STOP_S + 60
PORT = 18765

#: Runs with the installed venv's Python inside the network namespace: log in, read the demo.
SMOKE = r"""
import http.cookiejar, json, re, sys, time, urllib.parse, urllib.request
base = sys.argv[1]
opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
deadline = time.monotonic() + 240
while True:
    try:
        if opener.open(base + "/readyz", timeout=5).status == 200:
            break
    except OSError:
        pass
    if time.monotonic() > deadline:
        sys.exit("the server was not ready after 240 s")
    time.sleep(0.2)
home = opener.open(base + "/", timeout=30)
assert home.status == 200 and "登录" in home.read().decode("utf-8"), home.geturl()
page = opener.open(base + "/login", timeout=30).read().decode("utf-8")
token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
data = urllib.parse.urlencode({"username": "planner", "password": "wangge-demo-2026", "csrf_token": token}).encode()
opener.open(urllib.request.Request(base + "/login", data=data), timeout=60)
plans = json.loads(opener.open(base + "/api/plans", timeout=60).read())
stats = opener.open(base + "/map", timeout=120).read().decode("utf-8")
print(json.dumps({"plans": [p["name"] for p in plans], "map_bytes": len(stats)}, ensure_ascii=False))
"""


def _offline_ok() -> str | None:
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("ip") is None:
        return "needs root with unshare and ip (a network namespace without network)"
    if os.environ.get("WANGGE_TEST_DATABASE_URL"):
        return "the bundle serves its own SQLite demo: it runs once, in the SQLite pass of make test"
    if subprocess.run(["unshare", "-n", "true"], check=False).returncode != 0:
        return "unshare -n is not permitted here"
    if not (REPO / "webmap/static/vendor/leaflet/leaflet.js").exists():
        return "webmap/static/vendor is not built (python -m webmap.assets)"
    return None


def _script(stage: Path, venv: Path, tmp: Path) -> str:
    """Install, demo, partition, serve, smoke-check and stop: each step bounded; the server's pid in tmp/server.pid."""
    wangge = f"timeout {STEP_S} {venv}/bin/wangge"
    return f"""set -eu
ip link set lo up
timeout {STEP_S} sh {stage}/install.sh {venv}
{wangge} demo --buildings 400 --seed 3
{wangge} plans partition --name 离线示例 --user planner
{venv}/bin/wangge serve --prod --port {PORT} --workers 1 > {tmp}/serve.log 2>&1 &
server=$!
echo $server > {tmp}/server.pid
timeout {SMOKE_S} {venv}/bin/python {tmp}/smoke.py http://127.0.0.1:{PORT}
kill -TERM $server
i=0
while kill -0 $server 2>/dev/null; do
  i=$((i + 1)); [ $i -le {STOP_S * 5} ] || {{ echo "serve --prod did not stop in {STOP_S} s after SIGTERM"; exit 3; }}
  sleep 0.2
done
wait $server
"""


def _run_offline(script: str, tmp: Path, env: dict[str, str]) -> tuple[int | None, str]:
    """Run *script* in a network namespace with no network; its exit code (None: timed out) and
    output. On failure the server's stacks and log are added, and no process is left running."""
    out = tmp / "script.out"
    with out.open("w", encoding="utf-8") as fh:
        proc = subprocess.Popen(["unshare", "-n", "sh", "-c", script], cwd=tmp, env=env, stdout=fh,
                                stderr=subprocess.STDOUT)
        try:
            code: int | None = proc.wait(timeout=TOTAL_S)
        except subprocess.TimeoutExpired:
            code = None
    text = out.read_text(encoding="utf-8", errors="replace")
    pidfile, log = tmp / "server.pid", tmp / "serve.log"
    server = int(pidfile.read_text().strip()) if pidfile.exists() else None
    if code != 0 and server is not None:
        text += "\n--- server processes ---\n" + stall_report(server)
        text += "\n--- serve.log (stacks at the end) ---\n" + log.read_text(encoding="utf-8", errors="replace")[-12000:]
    for p in family(proc.pid) + (family(server) if server is not None else []):
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    proc.wait()
    return code, text


def test_the_bundle_installs_and_serves_the_demo_with_the_network_denied(tmp_path: Path) -> None:
    reason = _offline_ok()
    if reason:
        pytest.skip(reason)
    import bundle

    try:
        archive = bundle.build(tmp_path / "dist", timeout_s=BUILD_S)
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"the bundle cannot be built here (package index unreachable?): {exc}")
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        tar.extractall(tmp_path / "unpacked", filter="data")
    stage = tmp_path / "unpacked" / bundle.bundle_name()
    assert any(n.endswith("/wheels/" + p.name) for p in stage.glob("wheels/wangge-*.whl") for n in names)
    assert (stage / "assets/vendor/leaflet/leaflet.js").exists() and "fonts-noto-cjk" in \
        (stage / "debian-packages.txt").read_text(encoding="utf-8")

    venv = tmp_path / "venv"
    (tmp_path / "smoke.py").write_text(SMOKE, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "WANGGE_", "PYTHON"))}
    env.update(WANGGE_INSTANCE_PATH=str(tmp_path / "instance"), WANGGE_SECRET_KEY="offline-test",
               WANGGE_JOB_PROCESSES="1", PYTHON=sys.executable, HOME=str(tmp_path))
    code, output = _run_offline(_script(stage, venv, tmp_path), tmp_path, env)
    assert code == 0, f"exit {code} (None: over {TOTAL_S} s)\n{output[-20000:]}"
    assert "离线示例" in output and "Wangge installed in" in output
    # the code that ran was the installed wheel's, not this checkout's
    site = next(venv.glob("lib/python*/site-packages"))
    assert (site / "api" / "server" / "prod.py").exists() and (site / "webmap/static/vendor/leaflet/leaflet.js").exists()
