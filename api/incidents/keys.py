"""Open311 API keys: created by admins, shown once, stored only as a SHA-256 hash."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.incidents.models import Open311Key

__all__ = ["KeyError311", "create_key", "verify_key", "revoke_key"]


class KeyError311(ValueError):
    """A key name is taken or unknown."""


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create_key(session: Session, name: str) -> str:
    """A new API key for client *name* (the only time the clear key is seen)."""
    name = name.strip()
    if not name or len(name) > 100:
        raise KeyError311("API key 名称须为 1 至 100 个字符；例如 app-citizen")
    if session.scalar(select(Open311Key).where(Open311Key.name == name)) is not None:
        raise KeyError311(f"已存在名为 {name} 的 API key；换一个名称，或先吊销旧的")
    key = secrets.token_urlsafe(24)
    session.add(Open311Key(name=name, key_hash=_hash(key), active=True))
    session.flush()
    return key


def verify_key(session: Session, key: str | None) -> Open311Key | None:
    """The active key record matching *key*, or ``None``."""
    if not key:
        return None
    return session.scalar(select(Open311Key).where(Open311Key.key_hash == _hash(key), Open311Key.active.is_(True)))


def revoke_key(session: Session, name: str) -> None:
    """Deactivate the key of client *name*."""
    row = session.scalar(select(Open311Key).where(Open311Key.name == name))
    if row is None:
        raise KeyError311(f"没有名为 {name} 的 API key")
    row.active = False
