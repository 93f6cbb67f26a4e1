"""Fixtures for ``api`` tests, flaskr style: a fresh app on a fresh database (SQLite file in ``tmp_path``, or PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy.orm import Session

from api import db


def _make_app(config: dict) -> Flask:
    from api import create_app

    return create_app(config)


@pytest.fixture
def app(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    """A fresh app whose instance folder and database live in *tmp_path*."""
    instance = tmp_path / "instance"
    monkeypatch.setenv("WANGGE_SECRET_KEY", "test-secret")
    monkeypatch.delenv("WANGGE_DATABASE_URL", raising=False)
    app = _make_app(
        {
            "TESTING": True,
            "INSTANCE_PATH": str(instance),
            "DATABASE_URL": database_url,
            "WTF_CSRF_ENABLED": False,
        }
    )
    yield app
    db.dispose(app)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def session(app: Flask) -> Iterator[Session]:
    """A session in an app context; the test commits what it wants kept."""
    with app.app_context():
        s = db.get_db().sessionmaker()
        try:
            yield s
        finally:
            s.rollback()
            s.close()
