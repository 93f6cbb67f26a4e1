"""SQLAlchemy 2 models of the Wangge workspace, plans, users and audit log.

Layer tables mirror :data:`geo.layers.SCHEMAS` column for column (a test checks it) and
store geometry as WKB in EPSG:4326 plus its bounding box (``minx``..``maxy``, indexed)
so map views can load one bounding box without a spatial extension.

Layer tables carry no foreign keys between each other or to plans: a re-import replaces
a layer wholesale, and published plans are snapshots that must survive it.
This module imports no Flask: it is usable from scripts and Alembic alone.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import shapely
from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
    literal_column,
)
from sqlalchemy.dialects.postgresql import base as postgresql_base
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column
from sqlalchemy.types import TypeDecorator, TypeEngine, UserDefinedType

__all__ = [
    "Base",
    "Geometry",
    "WKB",
    "SRID",
    "UTCDateTime",
    "gist_index",
    "ROLES",
    "PLAN_STATUSES",
    "IMPORT_STATUSES",
    "LAYER_MODELS",
    "Community",
    "Building",
    "Street",
    "Compound",
    "ServicePoint",
    "ImportRun",
    "PlanVersion",
    "PlanGrid",
    "PlanAssignment",
    "PlanCell",
    "PlanEdit",
    "User",
    "LoginThrottle",
    "AuditEntry",
    "JOB_STATES",
    "BackgroundJob",
    "utcnow",
]

ROLES: tuple[str, ...] = ("admin", "planner", "worker", "viewer")
PLAN_STATUSES: tuple[str, ...] = ("draft", "published", "archived")
IMPORT_STATUSES: tuple[str, ...] = ("running", "success", "failed")
JOB_STATES: tuple[str, ...] = ("queued", "running", "done", "failed", "cancelled")
#: The storage CRS of every geometry column (EPSG:4326, WGS84).
SRID = 4326


def utcnow() -> datetime:
    """Timezone-aware current UTC time (the one clock of the models)."""
    return datetime.now(UTC)


class _PostGISGeometry(UserDefinedType):
    """``geometry(Geometry, 4326)`` on PostGIS, bound and read as WKB.

    Values travel as WKB exactly like on SQLite, so nothing above this type changes. The
    SRID is a literal in the SQL (never a bound parameter): the bulk paths compile an
    INSERT once and execute it with plain rows, which carry no value for a hidden bind.
    """

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return f"geometry(Geometry, {SRID})"

    def bind_expression(self, bindvalue: Any) -> Any:
        return func.ST_GeomFromWKB(bindvalue, literal_column(str(SRID)))

    def column_expression(self, col: Any) -> Any:
        # Typed as the column (Geometry or WKB), so its result processing still applies.
        return func.ST_AsBinary(col, type_=col.type)


class Geometry(TypeDecorator):
    """Geometry in EPSG:4326 stored as WKB (``BLOB`` on SQLite, PostGIS geometry on PostgreSQL).

    Binds a shapely geometry or ready WKB ``bytes``; reads back a shapely geometry.
    Bulk readers select the column with ``type_coerce(col, WKB)`` and decode the
    whole column at once with ``shapely.from_wkb`` (see :func:`api.workspace.load_layer`).
    """

    impl = LargeBinary
    cache_ok = True

    def __init__(self, *_reflected: Any) -> None:
        # Reflection builds geometry(kind, srid) columns with arguments; ours are all the same.
        super().__init__()

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(_PostGISGeometry())
        return dialect.type_descriptor(LargeBinary())

    def process_bind_param(self, value: Any, dialect: Dialect) -> bytes | None:
        if value is None or isinstance(value, bytes | bytearray | memoryview):
            return value
        return shapely.to_wkb(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        return shapely.from_wkb(bytes(value))


class WKB(TypeDecorator):
    """A geometry column read as raw WKB ``bytes`` on every backend: ``type_coerce(col, WKB)``.

    On SQLite the stored BLOB; on PostGIS ``ST_AsBinary(col)``. (``type_coerce(col,
    LargeBinary)`` would read PostGIS's own text form instead.)
    """

    impl = LargeBinary
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(_PostGISGeometry())
        return dialect.type_descriptor(LargeBinary())


# Reflection (Alembic's compare, inspect) knows PostGIS columns as ours instead of warning.
postgresql_base.ischema_names["geometry"] = Geometry


class UTCDateTime(TypeDecorator):
    """A timestamp stored as naive UTC and always read back timezone-aware (UTC).

    SQLite keeps no zone; without this, values written aware come back naive and
    comparisons like ``user.locked_until > utcnow()`` raise ``TypeError``.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware UTC time (api.models.utcnow())")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def gist_index(table: str) -> Index:
    """The GiST index of *table*'s geometry on PostGIS (none on SQLite, which filters by bbox columns)."""
    return Index(f"ix_{table}_geometry_gist", "geometry", postgresql_using="gist").ddl_if(dialect="postgresql")


class Base(DeclarativeBase):
    """Declarative base of every Wangge table."""

    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class _LayerMixin:
    """Geometry plus bounding box columns, with an index for bounding-box queries."""

    fid: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    geometry: Mapped[Any] = mapped_column(Geometry, nullable=False)
    minx: Mapped[float] = mapped_column(Float, nullable=False)
    miny: Mapped[float] = mapped_column(Float, nullable=False)
    maxx: Mapped[float] = mapped_column(Float, nullable=False)
    maxy: Mapped[float] = mapped_column(Float, nullable=False)

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        name = cls.__tablename__  # type: ignore[attr-defined]
        return (Index(f"ix_{name}_bbox", "minx", "maxx", "miny", "maxy"), gist_index(name))


class Community(_LayerMixin, Base):
    """社区: one community boundary."""

    __tablename__ = "communities"
    community_id: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    name: Mapped[str | None] = mapped_column(String(200))
    street_id: Mapped[str | None] = mapped_column(String(64))
    street_name: Mapped[str | None] = mapped_column(String(200))
    admin_code: Mapped[str | None] = mapped_column(String(12))


class Building(_LayerMixin, Base):
    """楼栋: one building footprint with its households."""

    __tablename__ = "buildings"
    building_id: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    name: Mapped[str | None] = mapped_column(String(200))
    use: Mapped[str | None] = mapped_column(String(32))
    floors: Mapped[int | None] = mapped_column(Integer)
    height_m: Mapped[float | None] = mapped_column(Float)
    households: Mapped[int | None] = mapped_column(Integer)
    households_estimated: Mapped[bool | None] = mapped_column(Boolean)
    compound_id: Mapped[str | None] = mapped_column(String(64))
    community_id: Mapped[str | None] = mapped_column(String(64), index=True)


class Street(_LayerMixin, Base):
    """道路: one street segment."""

    __tablename__ = "streets"
    street_id: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    name: Mapped[str | None] = mapped_column(String(200))
    road_class: Mapped[str | None] = mapped_column(String(32))
    foot: Mapped[bool | None] = mapped_column(Boolean)


class Compound(_LayerMixin, Base):
    """小区: one residential compound."""

    __tablename__ = "compounds"
    compound_id: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    name: Mapped[str | None] = mapped_column(String(200))


class ServicePoint(_LayerMixin, Base):
    """服务点: one facility."""

    __tablename__ = "service_points"
    point_id: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    name: Mapped[str | None] = mapped_column(String(200))
    category: Mapped[str | None] = mapped_column(String(64))


#: Layer name (as in :data:`geo.layers.SCHEMAS`) -> model class.
LAYER_MODELS: dict[str, type[_LayerMixin]] = {
    "communities": Community,
    "buildings": Building,
    "streets": Street,
    "compounds": Compound,
    "service_points": ServicePoint,
}


class ImportRun(Base):
    """One import into the workspace: who, from what, how many rows, the validation report."""

    __tablename__ = "import_runs"
    id: Mapped[int] = mapped_column(primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    username: Mapped[str] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)
    sources: Mapped[dict[str, Any]] = mapped_column(default=dict)
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    report: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="running")


class PlanVersion(Base):
    """One version of a grid plan (draft, published or archived), optimistic-locked."""

    __tablename__ = "plan_versions"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    community_id: Mapped[str | None] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16), default="draft")
    author: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    message: Mapped[str | None] = mapped_column(Text)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("plan_versions.id"))
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    version_counter: Mapped[int] = mapped_column(Integer, default=1, nullable=False)
    is_active: Mapped[bool] = mapped_column(Boolean, default=False)
    #: The workspace (``import_runs.id`` of its last successful import) the plan was made from.
    workspace_version: Mapped[int | None] = mapped_column(Integer)

    __mapper_args__ = {"version_id_col": version_counter}


class PlanGrid(Base):
    """One grid (网格) of a plan version."""

    __tablename__ = "plan_grids"
    __table_args__ = (UniqueConstraint("plan_version_id", "grid_id"), gist_index("plan_grids"),
                      Index("ix_plan_grids_community", "plan_version_id", "community_id"),
                      Index("ix_plan_grids_code", "plan_version_id", "code"))
    id: Mapped[int] = mapped_column(primary_key=True)
    plan_version_id: Mapped[int] = mapped_column(
        ForeignKey("plan_versions.id", ondelete="CASCADE"), index=True
    )
    grid_id: Mapped[str] = mapped_column(String(64))
    community_id: Mapped[str | None] = mapped_column(String(64))
    code: Mapped[str | None] = mapped_column(String(20))
    name: Mapped[str | None] = mapped_column(String(200))
    households: Mapped[int] = mapped_column(Integer, default=0)
    buildings: Mapped[int] = mapped_column(Integer, default=0)
    locked: Mapped[bool] = mapped_column(Boolean, default=False)
    exclusive: Mapped[bool] = mapped_column(Boolean, default=False)
    geometry: Mapped[Any | None] = mapped_column(Geometry)
    area_m2: Mapped[float | None] = mapped_column(Float)
    polsby_popper: Mapped[float | None] = mapped_column(Float)
    street_share: Mapped[float | None] = mapped_column(Float)
    flags: Mapped[str | None] = mapped_column(String(200))
    # the rules the grid breaks, comma-separated ("" none; NULL not checked since it was saved)
    violations: Mapped[str | None] = mapped_column(String(200))


class PlanAssignment(Base):
    """Building -> grid of a plan version (building ids are not foreign keys: plans are snapshots)."""

    __tablename__ = "plan_assignments"
    plan_version_id: Mapped[int] = mapped_column(
        ForeignKey("plan_versions.id", ondelete="CASCADE"), primary_key=True
    )
    building_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    grid_id: Mapped[str] = mapped_column(String(64), index=True)
    cell_id: Mapped[str | None] = mapped_column(String(80))

    __table_args__ = (Index("ix_plan_assignments_cell", "plan_version_id", "cell_id"),)


class PlanCell(Base):
    """One indivisible unit of a plan version (a building, a compound, an empty block) and its grid.

    Cells tile their community; a grid's outline is the coverage union of its cells.
    """

    __tablename__ = "plan_cells"
    __table_args__ = (
        UniqueConstraint("plan_version_id", "cell_id"),
        Index("ix_plan_cells_grid", "plan_version_id", "grid_id"),
        Index("ix_plan_cells_community", "plan_version_id", "community_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    plan_version_id: Mapped[int] = mapped_column(ForeignKey("plan_versions.id", ondelete="CASCADE"))
    cell_id: Mapped[str] = mapped_column(String(80))
    community_id: Mapped[str | None] = mapped_column(String(64))
    grid_id: Mapped[str] = mapped_column(String(64))
    households: Mapped[int] = mapped_column(Integer, default=0)
    buildings: Mapped[int] = mapped_column(Integer, default=0)
    geometry: Mapped[Any] = mapped_column(Geometry, nullable=False)


class PlanEdit(Base):
    """One manual edit of a plan version: the forward change and its inverse (undo/redo)."""

    __tablename__ = "plan_edits"
    __table_args__ = (UniqueConstraint("plan_version_id", "seq"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    plan_version_id: Mapped[int] = mapped_column(ForeignKey("plan_versions.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    op: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    inverse: Mapped[dict[str, Any]] = mapped_column(default=dict)
    author: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    undone: Mapped[bool] = mapped_column(Boolean, default=False)


class User(Base):
    """A person who logs in; Flask-Login compatible without importing Flask."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: Rotated on logout, password change and disabling: cookies naming an old token are void.
    session_token: Mapped[str | None] = mapped_column(String(64))

    def get_id(self) -> str:
        """Flask-Login: the id stored in the session cookie, ``"<id>:<session token>"``."""
        return f"{self.id}:{self.session_token or ''}"

    @property
    def is_active(self) -> bool:
        """Flask-Login: disabled users cannot log in (lock-out is checked at login)."""
        return bool(self.active)

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_anonymous(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"User({self.username!r}, role={self.role!r})"


class LoginThrottle(Base):
    """Failed logins of one account name from one client address (progressive delay, lock-out).

    Keyed per (account, client) so that guessing from one machine never locks the account
    for everybody else; unknown names are tracked too, so they behave like real ones.
    """

    __tablename__ = "login_throttle"
    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    client: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AuditEntry(Base):
    """One audit log row: who did what to which target, from where."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    username: Mapped[str | None] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str | None] = mapped_column(String(200))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    ip: Mapped[str | None] = mapped_column(String(64))


class BackgroundJob(Base):
    """One durable background job (api.jobs): who asked for what, where it stands, what it made.

    ``worker`` is ``host:pid:token`` of the consumer running it, so a restart can tell a job
    whose process died (marked failed) from one another live process still runs.
    """

    __tablename__ = "jobs"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(64), index=True)
    fn_name: Mapped[str] = mapped_column(String(200))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    username: Mapped[str] = mapped_column(String(64), index=True)
    state: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str] = mapped_column(String(500), default="")
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    plan_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    worker: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
class PlanSnapshot(Base):
    """The computed in-memory state of one plan version (cells, adjacency, grids), serialised.

    Written by the first process that builds it and read by every other (web workers, a
    restarted server), so no process rebuilds a plan from its cells again; *key* says what it
    was built from (version counter, bounds, import run, format): any difference means
    rebuild (api/plans/snapshot.py).
    """

    __tablename__ = "plan_snapshots"
    plan_version_id: Mapped[int] = mapped_column(ForeignKey("plan_versions.id", ondelete="CASCADE"),
                                                 primary_key=True)
    #: Parts of at most ``api.plans.snapshot.PART_BYTES`` in order: a 1 M-building state is over
    #: PostgreSQL's 1 GB field limit (and twice that as COPY text).
    part: Mapped[int] = mapped_column(Integer, primary_key=True, default=0)
    key: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    data: Mapped[bytes] = mapped_column(LargeBinary)



class PlanSummary(Base):
    """The plan card's numbers of one plan version (``GET /api/plans/<id>``), kept so the card of a
    city-size plan reads one row instead of counting its grids.

    Every edit applies its grids' difference in its own transaction, only to the row of the version
    it edits (*version*); a row of another version, other household bounds (*lo*, *hi*: the bounds
    *in_range* counts) or unchecked grids is counted again from ``plan_grids`` (api/plans/summary.py).
    """

    __tablename__ = "plan_summaries"
    plan_version_id: Mapped[int] = mapped_column(ForeignKey("plan_versions.id", ondelete="CASCADE"),
                                                 primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    lo: Mapped[int] = mapped_column(Integer)
    hi: Mapped[int] = mapped_column(Integer)
    grids: Mapped[int] = mapped_column(Integer)
    households: Mapped[int] = mapped_column(Integer)
    buildings: Mapped[int] = mapped_column(Integer)
    #: grids held to the household bounds (not exclusive, with buildings), and those within them
    normal: Mapped[int] = mapped_column(Integer)
    in_range: Mapped[int] = mapped_column(Integer)
    #: grids whose rules are not stored (``plan_grids.violations`` NULL)
    unchecked: Mapped[int] = mapped_column(Integer)
    communities: Mapped[int] = mapped_column(Integer)
    #: broken rule -> number of grids breaking it
    rules: Mapped[dict[str, Any]] = mapped_column(JSON)

# The register's tables share this Base; importing them here keeps Base.metadata (Alembic,
# the models-vs-migrations test) complete whichever module is imported first.
import api.boards.models as _board_models  # noqa: E402,F401
import api.incidents.models as _incident_models  # noqa: E402,F401,I001
import api.party.models as _party_models  # noqa: E402,F401
import api.patrol.models as _patrol_models  # noqa: E402,F401  (patrol tables, issue 14)
import api.register.models as _register_models  # noqa: E402,F401
