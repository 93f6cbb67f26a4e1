"""A Flask app served over real HTTP for tests: werkzeug on a loopback port, in a thread.

Shared by the browser tests (Chromium drives the served app) and the API tests that need real
concurrent HTTP requests (tests/api/test_attack_concurrency.py).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["serving"]


@contextmanager
def serving(app: Any, name: str = "wangge-live-server") -> Iterator[str]:
    """*app* served by werkzeug on 127.0.0.1 at a free port in a thread: yields its URL, then stops it.

    Every test that needs its own app behind a real HTTP server serves it through this.
    """
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
