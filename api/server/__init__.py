"""Production serving (issue 17 §2): gunicorn web workers and job processes (``wangge serve --prod``).

- :mod:`api.server.prod` — gunicorn's configuration from the settings, the server that runs
  :func:`api.create_app` in each web worker, signals (SIGTERM stop, SIGHUP restart);
- :mod:`api.server.jobprocs` — the ``wangge worker`` children kept running beside it.
"""

from __future__ import annotations

__all__: list[str] = []
