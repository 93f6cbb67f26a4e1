"""The outbox sender: drains :class:`~api.incidents.models.OutboxMessage` rows through a pluggable sender.

A sender is any object with ``send(message: OutgoingMessage) -> None`` that raises on failure.
``notify_sender`` names it: ``log`` (:class:`LogSender`, the default: the message goes to the
log, nothing leaves the machine) or ``package.module:Class`` (a gateway sender for SMS or
WeChat templates, built as ``Class(settings)``). Messages are read in a short read, sent with
no transaction open, and each result is written in its own short write: a message whose send
failed is retried after ``notify_retry_s`` (doubling) and marked ``failed`` after
``notify_max_attempts``, with its last error kept and listed. Delivery is at least once: a
sender killed between sending and recording sends that message again.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from api.incidents.models import OutboxMessage
from api.models import utcnow

__all__ = ["OutgoingMessage", "Sender", "LogSender", "SenderError", "load_sender", "drain_outbox", "outbox_summary",
           "retry_failed"]

log = logging.getLogger(__name__)


class SenderError(ValueError):
    """``notify_sender`` names no usable sender."""


@dataclass(frozen=True)
class OutgoingMessage:
    """What a sender gets: channel, recipient (user and address), template, its parameters and the text."""

    id: int
    channel: str
    username: str
    address: str | None
    template: str
    params: dict[str, Any]
    text: str


class Sender(Protocol):
    """Sends one message or raises."""

    def send(self, message: OutgoingMessage) -> None:
        """Deliver *message*; raise any exception when it was not delivered."""


class LogSender:
    """The default sender: writes each message to the log (no network)."""

    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:
        self.settings = settings

    def send(self, message: OutgoingMessage) -> None:
        """Log *message* (the address masked but for its last four characters)."""
        tail = (message.address or "")[-4:]
        log.info("outbox %s -> %s (***%s): %s", message.channel, message.username, tail, message.text)


def load_sender(spec: str, settings: Mapping[str, Any]) -> Sender:
    """The sender named by *spec*: ``log`` or ``package.module:Class`` (built with *settings*)."""
    if spec in ("", "log"):
        return LogSender(settings)
    module, _, name = spec.partition(":")
    if not module or not name:
        raise SenderError(f"notify_sender {spec!r} is neither 'log' nor 'package.module:Class'; "
                          "set it to e.g. mygateway.sms:SmsSender")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise SenderError(f"notify_sender {spec!r} cannot be loaded ({exc}); install the gateway package "
                          "or fix the setting") from None
    sender: Sender = cls(settings)
    return sender


def _due(session: Session, now: datetime, limit: int) -> list[OutgoingMessage]:
    rows = session.scalars(select(OutboxMessage).where(OutboxMessage.status == "pending",
                                                       OutboxMessage.next_attempt_at <= now)
                           .order_by(OutboxMessage.id).limit(limit))
    return [OutgoingMessage(r.id, r.channel, r.username, r.address, r.template, dict(r.params or {}), r.text)
            for r in rows]


def _record(session: Session, message: OutgoingMessage, error: str | None, *, now: datetime,
            settings: Mapping[str, Any]) -> str:
    row = session.get(OutboxMessage, message.id)
    if row is None or row.status != "pending":
        return "skipped"
    if error is None:
        row.status, row.sent_at, row.last_error = "sent", now, None
        row.attempts += 1
        return "sent"
    row.attempts += 1
    row.last_error = error[:1000]
    if row.attempts >= int(settings["notify_max_attempts"]):
        row.status = "failed"
        return "failed"
    row.next_attempt_at = now + timedelta(seconds=float(settings["notify_retry_s"]) * 2 ** (row.attempts - 1))
    return "retry"


def _attempt(sender: Sender, message: OutgoingMessage) -> str | None:
    if not message.address:
        return "收件人没有手机号：请在网格登记册中为其账号关联的人员填写电话"
    try:
        sender.send(message)
    except Exception as exc:  # noqa: BLE001 - any sender failure is recorded on the message and retried
        return f"{type(exc).__name__}: {exc}"
    return None


def drain_outbox(scope: Callable[..., Any], sender: Sender, *, settings: Mapping[str, Any],
                 now: datetime | None = None) -> dict[str, int]:
    """Send every due outbox message once; counts by outcome (``sent``, ``retry``, ``failed``, ``skipped``).

    *scope* is :func:`api.db.session_scope` (called as ``scope(write=False)`` to read and
    ``scope()`` per result), so a slow gateway never holds the database.
    """
    counts = {"sent": 0, "retry": 0, "failed": 0, "skipped": 0}
    now = now or utcnow()
    done: set[int] = set()
    while True:
        with scope(write=False) as s:
            batch = [m for m in _due(s, now, int(settings["notify_batch_size"])) if m.id not in done]
        if not batch:
            return counts
        for message in batch:
            error = _attempt(sender, message)
            with scope() as s:
                counts[_record(s, message, error, now=now, settings=settings)] += 1
            done.add(message.id)


def outbox_summary(session: Session, *, failed_limit: int = 50) -> dict[str, Any]:
    """Messages per status and the latest failed ones (for the admin's view)."""
    counts = dict(session.execute(select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)).all())
    failed = list(session.scalars(select(OutboxMessage).where(OutboxMessage.status == "failed")
                                  .order_by(OutboxMessage.id.desc()).limit(failed_limit)))
    return {"counts": {str(k): int(v) for k, v in counts.items()}, "failed": failed}


def retry_failed(session: Session) -> int:
    """Put every failed message back in the queue (after the gateway is fixed); how many."""
    result = session.execute(update(OutboxMessage).where(OutboxMessage.status == "failed")
                             .values(status="pending", attempts=0, next_attempt_at=utcnow())
                             .execution_options(synchronize_session=False))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
