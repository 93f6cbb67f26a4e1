"""Application configuration: Flask keys plus the Wangge settings table.

Precedence (lowest first): ``geo.settings.DEFAULTS``, ``instance/wangge.toml``,
``WANGGE_<NAME>`` environment variables, ``test_config``.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from geo.settings import DEFAULTS

__all__ = ["load_config", "coerce_setting", "read_or_create"]


def coerce_setting(name: str, raw: str) -> Any:
    """Parse the text *raw* of setting *name* to the type of its default."""
    default = DEFAULTS[name]
    try:
        if isinstance(default, bool):
            if raw.lower() in {"1", "true", "yes", "on"}:
                return True
            if raw.lower() in {"0", "false", "no", "off"}:
                return False
            raise ValueError(raw)
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, tuple):
            return tuple(json.loads(f"[{raw}]"))
    except ValueError:
        raise ValueError(
            f"setting {name}: cannot read {raw!r} as {type(default).__name__}; "
            f"set WANGGE_{name.upper()} to a value like {default!r}"
        ) from None
    return raw


def read_or_create(path: Path, make: Callable[[], str]) -> str:
    """The text of *path*; when missing, *make()* is written there first (mode 0600), atomically.

    Several processes (web workers, job processes) may start at once on a fresh instance
    folder: each writes its own candidate to a private file and links it into place; the
    first link wins and every process reads the winner, never a half-written file.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # created with mode 0600
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(make())
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process was first: use its file
        finally:
            os.unlink(tmp)
    return path.read_text()


def _secret_key(instance: Path) -> str:
    return read_or_create(instance / "secret_key", lambda: secrets.token_hex(32)).strip()


def load_config(instance_path: str, test_config: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return the Flask config mapping for an app whose instance folder is *instance_path*."""
    instance = Path(instance_path)
    settings = dict(DEFAULTS)
    toml_path = instance / "wangge.toml"
    if toml_path.exists():
        with toml_path.open("rb") as fh:
            for key, value in tomllib.load(fh).items():
                if key not in DEFAULTS:
                    raise ValueError(f"{toml_path}: unknown setting {key!r}; see README 'Settings'")
                settings[key] = tuple(value) if isinstance(DEFAULTS[key], tuple) else value
    for name in DEFAULTS:
        raw = os.environ.get(f"WANGGE_{name.upper()}")
        if raw is not None:
            settings[name] = coerce_setting(name, raw)
    test_config = dict(test_config or {})
    settings.update(test_config.pop("WANGGE", {}))
    config: dict[str, Any] = {
        "SECRET_KEY": os.environ.get("WANGGE_SECRET_KEY") or _secret_key(instance),
        "DATABASE_URL": os.environ.get("WANGGE_DATABASE_URL")
        or f"sqlite:///{instance / 'wangge.db'}",
        # Upload routes raise it to max_upload_mb per request (api.security.upload_route).
        "MAX_CONTENT_LENGTH": int(settings["max_request_kb"]) * 1024,
        "WTF_CSRF_TIME_LIMIT": None,
        "WANGGE": settings,
    }
    config.update(test_config)
    return config
