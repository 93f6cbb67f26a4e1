"""Alembic environment: runs our migrations against the app's database.

Used through :mod:`api.db` (``upgrade`` on startup, ``wangge db ...``), which passes the
engine in ``config.attributes["engine"]``. Without it, the URL comes from the config's
``sqlalchemy.url`` or else from the app configuration (``WANGGE_DATABASE_URL`` or the
instance folder's ``wangge.db``). SQLite needs ``render_as_batch`` for ALTER TABLE.
"""

from __future__ import annotations

from alembic import context

from api.models import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from api import create_app

    return create_app().config["DATABASE_URL"]


def run_migrations_offline() -> None:
    url = _url()
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=url.startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    from api.db import include_object_for, make_engine

    engine = config.attributes.get("engine") or make_engine(_url())
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            include_object=include_object_for(connection.dialect.name),
            # api.db.make_engine emits real BEGINs on SQLite, so DDL is transactional:
            # a failed upgrade leaves the previous schema intact.
            transactional_ddl=True,
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
