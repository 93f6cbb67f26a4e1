"""The computed plan state shared by every process through the database (``plan_snapshots``).

Building a :class:`~api.plans.state.PlanState` from a plan's cells (WKB decoding, the
metric copies, the cell adjacency, the grid numbers) is the cost of a cold plan page; every
web worker and every restart would pay it again. The first process that builds a state
stores it here; any process whose cache misses reads it back instead (a fraction of the
build). A snapshot is used only when its *key* matches: plan version counter, household
bounds, newest import run and :data:`FORMAT`; an edit bumps the version, so an old snapshot
is never used for a newer plan. After edits, the process that made them stores the new
state once the plan has been idle for ``plan_snapshot_delay_s`` (one write per burst of
edits, taken off the edit's own time).

The bytes are a NumPy ``.npz`` read with ``allow_pickle=False`` (numbers, WKB and one JSON
document): nothing in the database can make a process run code.
"""

from __future__ import annotations

import atexit
import gc
import io
import json
import logging
import threading
import time
from typing import Any

import numpy as np
import pyproj
import shapely
from flask import Flask
from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from api.db import get_db, session_scope
from api.models import ImportRun, PlanSnapshot, PlanVersion
from api.plans.state import GridMeta, PlanState, forget_database, is_cached, plan_bounds, plan_lock

__all__ = ["FORMAT", "PART_BYTES", "snapshot_key", "dump_state", "load_snapshot", "read_snapshot", "store_snapshot",
           "SnapshotSaver", "schedule_save", "stop_saver"]

log = logging.getLogger(__name__)

#: Version of the byte layout below; a change makes every stored snapshot unused (rebuilt).
FORMAT = 2  # 2: the local metric CRS is stored (the planner's split moves need it)
_GRID_FIELDS = ("grid_id", "community_id", "code", "name", "locked", "exclusive", "street_share", "flags",
                "households", "buildings", "area_m2", "polsby_popper", "violations")
_EXTENSION = "wangge.plan_snapshots"
#: Largest stored part of a state: PostgreSQL refuses a field over 1 GB, and ``db copy`` sends bytes as
#: COPY text (hex, twice the size) in lines that must stay under 1 GB too.
PART_BYTES = 64 << 20
_SAVER_LOCK = threading.Lock()


def snapshot_key(session: Session, plan: PlanVersion, defaults: dict[str, Any]) -> str:
    """What a state of *plan* is built from: version counter, bounds, newest import run, format."""
    lo, hi = plan_bounds(plan, defaults)
    last_import = session.scalar(select(func.max(ImportRun.id)))
    return f"v{plan.version_counter}:b{lo}-{hi}:i{last_import}:f{FORMAT}"


def _pack(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """WKB of *geoms* (None kept as empty) as one byte array plus offsets."""
    wkb = shapely.to_wkb(geoms, output_dimension=2)
    parts = [b"" if w is None else bytes(w) for w in wkb]
    offsets = np.zeros(len(parts) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(p) for p in parts])
    return np.frombuffer(b"".join(parts), dtype=np.uint8), offsets


def _unpack(data: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    raw = data.tobytes()
    wkb = np.asarray([raw[a:b] if b > a else None for a, b in zip(offsets[:-1], offsets[1:], strict=True)],
                     dtype=object)
    return shapely.from_wkb(wkb)


def dump_state(state: PlanState) -> bytes:
    """The bytes of *state* (see the module doc); :func:`load_snapshot` reads them back."""
    grids = list(state.grids.values())
    doc = {"format": FORMAT, "version": state.version, "lo": state.lo, "hi": state.hi,
           "cell_ids": state.cell_ids.tolist(), "community": state.community.tolist(),
           "grid_of": state.grid_of.tolist(), "building_ids": list(state.building_cell),
           "building_cells": list(state.building_cell.values()), "untiled": sorted(state.untiled),
           "crs": pyproj.CRS(state.crs).to_wkt(), "grids": [{k: getattr(m, k) for k in _GRID_FIELDS} for m in grids]}
    arrays: dict[str, np.ndarray] = {
        "doc": np.frombuffer(json.dumps(doc, ensure_ascii=False).encode("utf-8"), dtype=np.uint8),
        "households": state.households, "buildings": state.buildings, "adj_ptr": state.adj_ptr,
        "adj_idx": state.adj_idx, "rep_xy": shapely.get_coordinates(state.rep)}
    for name, geoms in (("geom", state.geom), ("metric", state.metric),
                        ("outline", np.asarray([m.geometry for m in grids], dtype=object))):
        arrays[f"{name}_wkb"], arrays[f"{name}_off"] = _pack(geoms)
    out = io.BytesIO()
    np.savez(out, **arrays)
    return out.getvalue()


def load_snapshot(data: bytes, key: tuple[str, int]) -> PlanState:
    """The :class:`PlanState` in *data* (from :func:`dump_state`), cached under *key*."""
    # ~100 k new objects (geometries, ids, sets) and nothing to free: without this, the
    # cyclic collector re-scanned them all, 0.6 of 1.2 s at 20 k cells (measured).
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _load_snapshot(data, key)
    finally:
        if enabled:
            gc.enable()


def _load_snapshot(data: bytes, key: tuple[str, int]) -> PlanState:
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        a = {name: z[name] for name in z.files}
    doc = json.loads(a["doc"].tobytes().decode("utf-8"))
    if doc["format"] != FORMAT:
        raise ValueError(f"plan snapshot format {doc['format']} is not {FORMAT}")
    outlines = _unpack(a["outline_wkb"], a["outline_off"])
    grids = {}
    for g, outline in zip(doc["grids"], outlines, strict=True):
        meta = GridMeta(**{k: g[k] for k in _GRID_FIELDS if k not in ("households", "buildings", "area_m2",
                                                                      "polsby_popper", "violations")})
        meta.households, meta.buildings = int(g["households"]), int(g["buildings"])
        meta.area_m2, meta.polsby_popper = float(g["area_m2"]), float(g["polsby_popper"])
        meta.violations, meta.geometry = list(g["violations"]), outline
        grids[meta.grid_id] = meta
    cell_ids = np.asarray(doc["cell_ids"], dtype=object)
    grid_of = np.asarray(doc["grid_of"], dtype=object)
    members: dict[str, set[int]] = {g: set() for g in grids}
    for i, g in enumerate(doc["grid_of"]):
        members.setdefault(g, set()).add(i)
    return PlanState(
        key=key, version=int(doc["version"]), lo=int(doc["lo"]), hi=int(doc["hi"]), cell_ids=cell_ids,
        cell_index={c: i for i, c in enumerate(doc["cell_ids"])},
        community=np.asarray(doc["community"], dtype=object), households=a["households"].astype(np.int64),
        buildings=a["buildings"].astype(np.int64), geom=_unpack(a["geom_wkb"], a["geom_off"]),
        metric=_unpack(a["metric_wkb"], a["metric_off"]), rep=shapely.points(a["rep_xy"]), grid_of=grid_of,
        adj_ptr=a["adj_ptr"].astype(np.int64), adj_idx=a["adj_idx"].astype(np.int64),
        building_cell=dict(zip(doc["building_ids"], doc["building_cells"], strict=True)),
        grids=grids, members=members, untiled=set(doc["untiled"]),
        crs=pyproj.CRS.from_wkt(doc["crs"]))


def _same_build(stored: str, wanted: str) -> bool:
    """Whether a state stored under key *stored* is of the same build as *wanted* at this or an
    older version (the caller replays the edits since, :mod:`api.plans.catchup`)."""
    try:
        have, want = int(stored.split(":", 1)[0][1:]), int(wanted.split(":", 1)[0][1:])
    except ValueError:
        return False
    return stored.split(":", 1)[1:] == wanted.split(":", 1)[1:] and have <= want


def read_snapshot(session: Session, plan: PlanVersion, defaults: dict[str, Any],
                  key: tuple[str, int]) -> PlanState | None:
    """The stored state of *plan* when one matches its current key (or an older version of it:
    its ``version`` tells), else ``None``."""
    t0 = time.perf_counter()
    stored = _stored_key(session, plan.id)
    if stored is None or not _same_build(stored, snapshot_key(session, plan, defaults)):
        return None
    data = _stored_bytes(session, plan.id, stored)
    try:
        if data is None:
            raise ValueError("its parts are incomplete or of different builds")
        state = load_snapshot(data, key)
    except (ValueError, KeyError, TypeError) as exc:  # a damaged or foreign blob: rebuild instead
        log.warning("plan %d: stored state unreadable (%s); rebuilding", plan.id, exc)
        return None
    log.info("plan %d v%d loaded from its stored state in %.2f s (%d cells, %.1f MB)", plan.id, state.version,
             time.perf_counter() - t0, len(state.cell_ids), len(data) / 1e6)
    return state


def _stored_key(session: Session, plan_id: int) -> str | None:
    """The key *plan_id*'s stored state was built for (its first part's), or ``None``."""
    return session.scalar(select(PlanSnapshot.key).where(PlanSnapshot.plan_version_id == plan_id,
                                                         PlanSnapshot.part == 0))


def _stored_bytes(session: Session, plan_id: int, key: str) -> bytes | None:
    """The parts of *plan_id*'s state stored under *key*, joined in order; ``None`` when a part is
    missing or of another key."""
    rows = session.execute(select(PlanSnapshot.part, PlanSnapshot.key, PlanSnapshot.data)
                           .where(PlanSnapshot.plan_version_id == plan_id)
                           .order_by(PlanSnapshot.part)).all()
    if [r.part for r in rows] != list(range(len(rows))) or any(r.key != key for r in rows):
        return None
    return b"".join(bytes(r.data) for r in rows)


def store_snapshot(session: Session, plan_id: int, key: str, data: bytes) -> None:
    """Replace the stored state of *plan_id* by *data* built for *key* (in the caller's write scope),
    in parts of at most :data:`PART_BYTES`."""
    session.execute(delete(PlanSnapshot).where(PlanSnapshot.plan_version_id == plan_id))
    view = memoryview(data)
    for part, start in enumerate(range(0, max(len(data), 1), PART_BYTES)):
        session.execute(insert(PlanSnapshot).values(plan_version_id=plan_id, part=part, key=key,
                                                    data=bytes(view[start:start + PART_BYTES])))


class SnapshotSaver:
    """Stores plan states in a background thread of one app, each once its plan is idle.

    :meth:`schedule` (after a build or an edit) notes a plan; the thread waits until no edit
    touched it for *delay_s*, serialises its cached state under the plan's lock (edits wait
    that long, never a request that only reads), and writes it in its own transaction.
    """

    def __init__(self, app: Flask, delay_s: float) -> None:
        self.app, self.delay_s = app, float(delay_s)
        self._due: dict[int, tuple[float, PlanState]] = {}
        self._cond = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="wangge-plan-snapshots", daemon=True)
        self._thread.start()
        # a process that ends (restart, stop) stores what is pending, so the next one need not rebuild
        atexit.register(self.flush)

    def stop(self) -> None:
        """Forget pending states, store nothing more and end the thread (the app is being disposed).

        Waits for a store under way (one transaction, bounded by the database timeouts): its
        connection must be back in the pool before the pool is disposed, or it stays open
        until the garbage collector finds it.
        """
        atexit.unregister(self.flush)
        with self._cond:
            self._due.clear()
            self._stopped = True
            self._cond.notify()
        self._thread.join()

    def schedule(self, state: PlanState, *, delay_s: float | None = None) -> None:
        """Store *state* after *delay_s* (default: the app's ``plan_snapshot_delay_s``) without edits."""
        with self._cond:
            self._due[state.plan_id] = (time.monotonic() + (self.delay_s if delay_s is None else delay_s), state)
            self._cond.notify()

    def flush(self) -> None:
        """Store every scheduled state now (in the caller's thread)."""
        with self._cond:
            due, self._due = self._due, {}
        for _, state in due.values():
            self._save(state)

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._stopped:
                    return
                now = time.monotonic()
                ready = [p for p, (t, _) in self._due.items() if t <= now]
                if not ready:
                    wait = min((t for t, _ in self._due.values()), default=now + 3600) - now
                    self._cond.wait(timeout=max(wait, 0.01))
                    continue
                states = [self._due.pop(p)[1] for p in ready]
            for state in states:
                self._save(state)

    def _save(self, state: PlanState) -> None:
        try:
            with self.app.app_context():
                self._write(state)
        except Exception:  # noqa: BLE001 - a lost snapshot only costs the next cold load a rebuild
            log.exception("plan %d: storing its state failed", state.plan_id)

    def _write(self, state: PlanState) -> None:
        t0 = time.perf_counter()
        with session_scope(write=False) as session:
            plan = session.get(PlanVersion, state.plan_id)
            if plan is None:
                return
            with plan_lock(session, state.plan_id):
                # changed meanwhile (here or elsewhere), or dropped after a failed edit left it
                # half-applied: a newer state gets stored instead
                if state.version != plan.version_counter or not is_cached(state):
                    return
                key = snapshot_key(session, plan, self.app.config["WANGGE"])
                data = dump_state(state)
        with session_scope() as session:
            still = session.scalar(select(PlanVersion.version_counter).where(PlanVersion.id == state.plan_id))
            if still != state.version:
                return
            store_snapshot(session, state.plan_id, key, data)
        log.info("plan %d v%d: state stored for other processes in %.2f s (%.1f MB)", state.plan_id,
                 state.version, time.perf_counter() - t0, len(data) / 1e6)


def schedule_save(app: Flask, state: PlanState, *, delay_s: float | None = None) -> None:
    """Store *state* for other processes once its plan is idle (see :class:`SnapshotSaver`)."""
    with _SAVER_LOCK:
        saver = app.extensions.get(_EXTENSION)
        if saver is None:
            saver = app.extensions[_EXTENSION] = SnapshotSaver(app, app.config["WANGGE"]["plan_snapshot_delay_s"])
    saver.schedule(state, delay_s=delay_s)


def stop_saver(app: Flask) -> None:
    """Stop storing states of *app* (``api.db.dispose``: its database is going away)."""
    saver = app.extensions.pop(_EXTENSION, None)
    if saver is not None:
        saver.stop()
    # its plan states go too: another database may be created at the same address, its plans numbered again
    forget_database(get_db(app).engine.url.render_as_string(hide_password=True))
