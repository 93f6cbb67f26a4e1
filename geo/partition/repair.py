"""Repair a labelling of a piece: contiguity, then household bounds, then smoother boundaries.

:func:`fix_contiguity` keeps each grid's heaviest connected part and hands the rest to
neighbours. :func:`balance` moves boundary units between neighbouring grids, pushing
households along a path of grids from an over-full grid to the nearest one with room
(or from the nearest one with surplus to an under-full grid); a unit moves only when its
grid stays connected without it. :func:`smooth` then moves single boundary units that
lower the cut cost (boundaries onto streets, rounder grids) while every grid stays in
range and connected; :func:`consolidate` moves a grid's whole part of a street block
into the grid sharing the block when single moves do not pay; :func:`absorb_empty` gives
each run of units without households to the grid that cuts least. Moves touch the
fewest units, which keeps re-plans stable.
"""

from __future__ import annotations

import logging
from collections import deque

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from geo.partition.solve import Piece

__all__ = ["absorb_empty", "components", "consolidate", "fix_contiguity", "balance", "smooth", "violation"]

log = logging.getLogger(__name__)


def violation(totals: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Households over *hi* or under *lo* of every grid (0 when in range)."""
    t = np.asarray(totals, dtype=np.float64)
    return np.maximum(t - hi, 0.0) + np.maximum(lo - t, 0.0)


def components(n: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Connected component label (smallest member) of every node; numpy, no sparse overhead."""
    if n > 5000:
        g = coo_matrix((np.ones(len(u)), (u, v)), shape=(n, n))
        return connected_components(g, directed=False)[1]
    lab = np.arange(n)
    while True:
        new = lab.copy()
        np.minimum.at(new, lab[u], lab[v])
        np.minimum.at(new, lab[v], lab[u])
        new = new[new]
        new = new[new]
        if np.array_equal(new, lab):
            return lab
        lab = new


def fix_contiguity(piece: Piece, labels: np.ndarray) -> np.ndarray:
    """Keep each grid's heaviest connected part; give the rest (and -1 nodes) to neighbours."""
    lab = labels.copy()
    same = (lab[piece.u] == lab[piece.v]) & (lab[piece.u] >= 0)
    comp = components(piece.n, piece.u[same], piece.v[same])
    w = piece.weight + 1e-6
    cw = np.bincount(comp, weights=w)
    idx = np.flatnonzero(lab >= 0)
    o = idx[np.lexsort((idx, -cw[comp[idx]], lab[idx]))]
    first = o[np.concatenate(([True], lab[o][1:] != lab[o][:-1]))] if len(o) else o
    best = np.full(int(lab.max()) + 1 if len(idx) else 1, -1)
    best[lab[first]] = comp[first]
    keep = (lab >= 0) & (best[np.maximum(lab, 0)] == comp)
    lab[~keep] = -1
    cat = np.concatenate
    aa, bb, cc = cat((piece.u, piece.v)), cat((piece.v, piece.u)), cat((piece.cost, piece.cost))
    while (lab < 0).any():
        m = (lab[aa] < 0) & (lab[bb] >= 0)
        if not m.any():
            lab[lab < 0] = lab.max() + 1 if (lab >= 0).any() else 0
            break
        fa, fb, fc = aa[m], bb[m], cc[m]
        o = np.lexsort((-fc, fa))
        first = o[np.concatenate(([True], fa[o][1:] != fa[o][:-1]))]
        lab[fa[first]] = lab[fb[first]]
    _, lab = np.unique(lab, return_inverse=True)
    return lab.ravel()


def _viol1(t: float, lo: float, hi: float) -> float:
    return t - hi if t > hi else lo - t if t < lo else 0.0


class _State:
    """Labels, members and totals of a piece's grids, with unit moves that keep grids connected."""

    def __init__(self, piece: Piece, labels: np.ndarray) -> None:
        n = piece.n
        a, b = np.concatenate((piece.u, piece.v)), np.concatenate((piece.v, piece.u))
        c = np.concatenate((piece.cost, piece.cost))
        o = np.argsort(a, kind="stable")
        cuts = np.searchsorted(a[o], np.arange(n + 1))
        nb, cs = b[o].tolist(), c[o].tolist()
        self.adj = [nb[cuts[i]:cuts[i + 1]] for i in range(n)]
        self.cost = [cs[cuts[i]:cuts[i + 1]] for i in range(n)]
        self.log: list[tuple[int, int]] | None = None  # (unit, label before) of every move when set
        self.w = piece.weight.astype(np.float64).tolist()
        self.lab = labels.astype(np.int64).tolist()
        k = max(self.lab) + 1 if n else 0
        self.members: list[set[int]] = [set() for _ in range(k)]
        self.tot = [0.0] * k
        for i, g in enumerate(self.lab):
            self.members[g].add(i)
            self.tot[g] += self.w[i]

    def snapshot(self) -> tuple[list[int], list[set[int]], list[float]]:
        return list(self.lab), [set(m) for m in self.members], list(self.tot)

    def restore(self, snap: tuple[list[int], list[set[int]], list[float]]) -> None:
        self.lab, self.members, self.tot = list(snap[0]), [set(m) for m in snap[1]], list(snap[2])

    def neighbours(self, g: int) -> set[int]:
        lab = self.lab
        return {lab[y] for v in self.members[g] for y in self.adj[v]} - {g}

    def connected_without(self, g: int, v: int) -> bool:
        rest = self.members[g]
        if len(rest) <= 1:
            return False
        adj, lab = self.adj, self.lab
        inner = [y for y in adj[v] if lab[y] == g]
        if len(inner) <= 1:
            return True  # a leaf of its grid never disconnects it
        seen = {v, inner[0]}
        dq = deque([inner[0]])
        want = set(inner[1:])
        while dq and want:
            x = dq.popleft()
            for y in adj[x]:
                if lab[y] == g and y not in seen:
                    seen.add(y)
                    want.discard(y)
                    dq.append(y)
        return not want or len(seen) == len(rest)

    def gain(self, v: int, to: int) -> float:
        """Cut cost removed by moving *v* into grid *to* (negative: the cut grows)."""
        fr = self.lab[v]
        s = 0.0
        for y, c in zip(self.adj[v], self.cost[v], strict=True):
            ly = self.lab[y]
            if ly == to:
                s += c
            elif ly == fr:
                s -= c
        return s

    def move(self, v: int, to: int) -> None:
        fr = self.lab[v]
        if self.log is not None:
            self.log.append((v, fr))
        self.members[fr].discard(v)
        self.members[to].add(v)
        self.tot[fr] -= self.w[v]
        self.tot[to] += self.w[v]
        self.lab[v] = to

    def transfer(self, a: int, b: int, amount: float, cap: float) -> float:
        """Move boundary units from grid *a* to *b*: about *amount* households, never over *cap*."""
        moved = 0.0
        for _ in range(len(self.members[a])):
            if moved >= amount:
                break
            room = cap - moved
            get = self.lab.__getitem__
            cand = sorted((abs(amount - moved - self.w[v]), -self.gain(v, b), v) for v in self.members[a]
                          if self.w[v] <= room and b in map(get, self.adj[v]))
            for _, _, v in cand:
                if self.connected_without(a, v):
                    self.move(v, b)
                    moved += self.w[v]
                    break
            else:
                break
        return moved


def _bfs_grids(st: _State, g: int) -> dict[int, int]:
    """Parent of every grid reachable from *g* in the grid adjacency graph (BFS order)."""
    parent = {g: -1}
    dq = deque([g])
    while dq:
        x = dq.popleft()
        for y in sorted(st.neighbours(x)):
            if y not in parent:
                parent[y] = x
                dq.append(y)
    return parent


def _path(parent: dict[int, int], t: int) -> list[int]:
    out = [t]
    while parent[out[-1]] >= 0:
        out.append(parent[out[-1]])
    return out[::-1]


def _push(st: _State, g: int, *, lo: float, hi: float, tries: int) -> bool:
    """Move households along a grid path to or from *g*; True when the violation fell."""
    over = st.tot[g] > hi
    parent = _bfs_grids(st, g)
    room = {t: (hi - st.tot[t]) if over else (st.tot[t] - lo) for t in parent if t != g}
    cands = sorted((t for t in room if room[t] > 0), key=lambda t: (len(_path(parent, t)), -room[t], t))
    before = float(violation(np.array(st.tot), lo, hi).sum())
    slack = (hi - lo) / 4
    for t in cands[:tries]:
        snap = st.snapshot()
        path = _path(parent, t)  # g ... t
        if over:
            amount = min(max(st.tot[g] - hi, (st.tot[g] - st.tot[t]) / 2), room[t])
            pairs = list(zip(path[-2::-1], path[:0:-1], strict=True))  # into t first, g gives last
        else:
            amount = min(max(lo - st.tot[g], (st.tot[t] - st.tot[g]) / 2), room[t])
            path = path[::-1]  # t ... g
            pairs = list(zip(path[-2::-1], path[:0:-1], strict=True))  # into g first, t gives last
        for i, (giver, taker) in enumerate(pairs):
            cap = amount + slack
            if over and i == 0:
                cap = min(cap, hi - st.tot[taker])
            if not over and i == len(pairs) - 1:
                cap = min(cap, st.tot[giver] - lo)
            amount = st.transfer(giver, taker, amount, cap)
            if amount <= 0:
                break
        if float(violation(np.array(st.tot), lo, hi).sum()) < before - 1e-9:
            return True
        st.restore(snap)
    return False


def _unit_sets(st: _State, donor: int, taker: int, lo_s: float, hi_s: float) -> list[list[int]]:
    """Sets of *donor*'s units bordering *taker* holding lo_s..hi_s households, donor kept connected.

    Single units first, then a run grown from the shared boundary: units that do not
    overshoot the need first, cheapest cut among them first.
    """
    out: list[list[int]] = []
    get = st.lab.__getitem__
    front = {v for v in st.members[donor] if taker in map(get, st.adj[v])}
    singles = sorted((-st.gain(v, taker), v) for v in front if lo_s <= st.w[v] <= hi_s)
    for _, v in singles:
        if st.connected_without(donor, v):
            out.append([v])
            if len(out) == 2:
                break
    run: list[int] = []
    got = 0.0
    while got < lo_s and front:
        need = lo_s - got
        cand = sorted((st.w[v] > need, -st.gain(v, taker), v) for v in front if got + st.w[v] <= hi_s)
        pick = next((v for _, _, v in cand if st.connected_without(donor, v)), None)
        if pick is None:
            break
        st.move(pick, taker)
        run.append(pick)
        got += st.w[pick]
        front.discard(pick)
        front.update(y for y in st.adj[pick] if st.lab[y] == donor)
    for v in reversed(run):
        st.move(v, donor)
    if run and got >= lo_s and run not in out:
        out.append(run)
    return out


def _eject(st: _State, x: int, *, lo: float, hi: float, depth: int, seen: set[int], budget: list[int]) -> bool:
    """Bring grid *x* into range by an ejection chain of unit moves through neighbouring grids."""
    over = st.tot[x] > hi
    lo_s, hi_s = (st.tot[x] - hi, st.tot[x] - lo) if over else (lo - st.tot[x], hi - st.tot[x])
    options = []
    for y in sorted(st.neighbours(x) - seen):
        donor, taker = (x, y) if over else (y, x)
        for units in _unit_sets(st, donor, taker, lo_s, hi_s):
            s = sum(st.w[v] for v in units)
            after = st.tot[y] + s if over else st.tot[y] - s
            left = _viol1(after, lo, hi)
            options.append((left, -sum(st.gain(v, taker) for v in units), y, units))
    options.sort(key=lambda t: (t[0], t[1], t[2]))
    for left, _, y, units in options:
        if budget[0] <= 0:
            return False
        budget[0] -= 1
        snap = st.snapshot()
        donor, taker = (x, y) if over else (y, x)
        for v in units:
            st.move(v, taker)
        if left == 0:
            return True
        if depth > 0 and _eject(st, y, lo=lo, hi=hi, depth=depth - 1, seen=seen | {x}, budget=budget):
            return True
        st.restore(snap)
    return False


def balance(piece: Piece, labels: np.ndarray, *, lo: float, hi: float, tries: int = 4, depth: int = 5,
            budget: int = 300, max_rounds: int | None = None) -> np.ndarray:
    """Grids within [lo, hi] by boundary moves, every grid kept connected (best effort)."""
    st = _State(piece, labels)
    stuck: set[int] = set()
    left = [budget]
    rounds = max_rounds if max_rounds is not None else 20 * (len(st.tot) + 1)
    for _ in range(rounds):
        viol = violation(np.array(st.tot), lo, hi)
        bad = [g for g in np.argsort(-viol, kind="stable").tolist() if viol[g] > 0 and g not in stuck]
        if not bad:
            break
        g = bad[0]
        before = float(viol.sum())
        if _eject(st, g, lo=lo, hi=hi, depth=depth, seen=set(), budget=left) and \
                float(violation(np.array(st.tot), lo, hi).sum()) < before - 1e-9:
            stuck.clear()
        elif _push(st, g, lo=lo, hi=hi, tries=tries):
            stuck.clear()
        else:
            stuck.add(g)
    return np.array(st.lab, dtype=np.int64)


def smooth(piece: Piece, labels: np.ndarray, *, lo: float, hi: float, rounds: int = 3) -> np.ndarray:
    """Move boundary units that lower the cut cost while both grids stay in range and connected."""
    st = _State(piece, labels)
    lab = st.lab
    for _ in range(rounds):
        moved = 0
        for v in range(piece.n):
            fr = lab[v]
            targets = {lab[y] for y in st.adj[v]} - {fr}
            if not targets:
                continue
            w = st.w[v]
            if _viol1(st.tot[fr] - w, lo, hi) > _viol1(st.tot[fr], lo, hi):
                continue
            best, to = 1e-9, -1
            for t in sorted(targets):
                gn = st.gain(v, t)
                if gn > best and _viol1(st.tot[t] + w, lo, hi) <= _viol1(st.tot[t], lo, hi):
                    best, to = gn, t
            if to >= 0 and st.connected_without(fr, v):
                st.move(v, to)
                moved += 1
        if not moved:
            break
    return np.array(st.lab, dtype=np.int64)


def _connected_rest(st: _State, g: int, part: set[int]) -> bool:
    """Whether grid *g* stays connected (and not empty) without the units in *part*."""
    rest = st.members[g] - part
    if not rest:
        return False
    start = next(iter(rest))
    seen = {start}
    dq = deque([start])
    adj, lab = st.adj, st.lab
    while dq:
        x = dq.popleft()
        for y in adj[x]:
            if lab[y] == g and y not in seen and y not in part:
                seen.add(y)
                dq.append(y)
    return len(seen) == len(rest)


def _fragments(piece: Piece, lab: np.ndarray, inner: np.ndarray) -> list[np.ndarray]:
    """Each grid's parts of street blocks (units joined off the streets) that border another
    grid off the streets, the part with the dearest such border first."""
    u, v = piece.u, piece.v
    same = inner & (lab[u] == lab[v])
    comp = components(piece.n, u[same], v[same])
    cross = inner & (lab[u] != lab[v])
    if not cross.any():
        return []
    border = np.bincount(np.r_[comp[u[cross]], comp[v[cross]]],
                         weights=np.r_[piece.cost[cross], piece.cost[cross]], minlength=piece.n)
    order = np.argsort(comp, kind="stable")
    starts = np.searchsorted(comp[order], np.arange(piece.n + 1))
    keys = np.flatnonzero(border > 0)
    keys = keys[np.lexsort((keys, -border[keys]))]
    return [order[starts[k]:starts[k + 1]] for k in keys.tolist()]


def consolidate(piece: Piece, labels: np.ndarray, *, lo: float, hi: float, rounds: int = 3,
                budget: int = 16) -> np.ndarray:
    """Hand whole parts of street blocks to the neighbouring grid that shares the block.

    :func:`smooth` moves one unit at a time, so a grid that reaches a few buildings into
    a block held by its neighbour keeps them when no single move pays: the boundary stays
    between buildings instead of on the streets around the block. Here a grid's part of
    a block (its units joined by boundaries off the streets) moves whole into a grid that
    borders it off the streets, when that lowers the cut cost; where the move takes a
    grid out of range, an ejection chain (at most *budget* unit moves) must bring every
    grid back, and the move stands only when the cut cost of the whole piece still fell.
    Every grid stays connected and no grid's violation of the bounds grows.
    """
    if piece.off is None or piece.n < 3:
        return labels
    inner = piece.off > 1.0
    st = _State(piece, labels)
    for _ in range(rounds):
        moved = 0
        for frag in _fragments(piece, np.array(st.lab), inner):
            g = st.lab[frag[0]]
            part = set(frag.tolist())
            if any(st.lab[x] != g for x in part) or len(part) >= len(st.members[g]):
                continue  # changed by an earlier move of this round, or the whole grid
            ext: dict[int, float] = {}  # cut cost from the part to every other grid
            kept = 0.0  # cut cost between the part and the rest of its grid
            for x in part:
                for y, c in zip(st.adj[x], st.cost[x], strict=True):
                    ly = st.lab[y]
                    if ly != g:
                        ext[ly] = ext.get(ly, 0.0) + c
                    elif y not in part:
                        kept += c
            targets = sorted((t for t in ext if ext[t] - kept > 1e-9), key=lambda t: (-ext[t], t))
            if not targets or not _connected_rest(st, g, part):
                continue
            for i, t in enumerate(targets):  # ejection chains for the best target only
                if _try_move(st, sorted(part), g, t, lo=lo, hi=hi, budget=budget if i == 0 else 0):
                    moved += 1
                    break
        if not moved:
            break
    return np.array(st.lab, dtype=np.int64)


def _try_move(st: _State, units: list[int], g: int, t: int, *, lo: float, hi: float, budget: int) -> bool:
    """Move *units* from grid *g* to *t*; keep it only if the bounds hold and the cut got cheaper.

    The callers pick moves that lower the cut, so a move that keeps both grids in range
    stands at once; otherwise an ejection chain must repair the bounds and the cut is
    recounted over the units that moved.
    """
    v0g, v0t = _viol1(st.tot[g], lo, hi), _viol1(st.tot[t], lo, hi)
    w = sum(st.w[x] for x in units)
    if _viol1(st.tot[g] - w, lo, hi) <= v0g + 1e-9 and _viol1(st.tot[t] + w, lo, hi) <= v0t + 1e-9:
        for x in units:
            st.move(x, t)
        return True
    if budget <= 0:
        return False
    viol0 = violation(np.array(st.tot), lo, hi)
    snap = st.snapshot()
    before = {x: st.lab[x] for x in units}
    st.log = []
    for x in units:
        st.move(x, t)
    left = [budget]
    for x in (t, g):
        if _viol1(st.tot[x], lo, hi) > viol0[x] + 1e-9:
            _eject(st, x, lo=lo, hi=hi, depth=3, seen=set(), budget=left)
    for x, fr in st.log:
        before.setdefault(x, fr)
    st.log = None
    if (violation(np.array(st.tot), lo, hi) <= viol0 + 1e-9).all() and _cut_change(st, before) < -1e-9:
        return True
    st.restore(snap)
    return False


def _cut_change(st: _State, before: dict[int, int]) -> float:
    """Change of the cut cost since the units in *before* (unit → its label then) moved."""
    lab = st.lab
    delta = 0.0
    for x, lx0 in before.items():
        for y, c in zip(st.adj[x], st.cost[x], strict=True):
            if y in before and y < x:
                continue  # counted from y
            ly0 = before.get(y, lab[y])
            delta += c * ((lab[x] != lab[y]) - (lx0 != ly0))
    return delta



def _run_costs(st: _State, run: list[int], part: set[int]) -> tuple[dict[int, float], float]:
    """Cut cost from *run* to every neighbouring grid, and the cut cost on and inside it now."""
    ext: dict[int, float] = {}
    now = 0.0
    for x in run:
        for y, c in zip(st.adj[x], st.cost[x], strict=True):
            cut = st.lab[x] != st.lab[y]
            if y in part:
                now += c * cut / 2  # seen from both ends
            else:
                ext[st.lab[y]] = ext.get(st.lab[y], 0.0) + c
                now += c * cut
    return ext, now


def absorb_empty(piece: Piece, labels: np.ndarray, *, closed: frozenset[int] = frozenset()) -> np.ndarray:
    """Give every connected run of units without households, whole, to the grid that cuts least.

    Units without households (offices, empty blocks) leave every grid's households as they
    are wherever they go, so each run of them joins the neighbouring grid (not one of
    *closed*, e.g. exclusive grids) that leaves the least cut cost, when that is less than
    now and every grid it leaves stays connected and not empty.
    """
    zero = piece.weight <= 0
    if piece.n < 3 or not zero.any():
        return labels
    st = _State(piece, labels)
    both = zero[piece.u] & zero[piece.v]
    comp = components(piece.n, piece.u[both], piece.v[both])
    order = np.argsort(comp, kind="stable")
    order = order[zero[order]]
    starts = np.flatnonzero(np.r_[True, comp[order][1:] != comp[order][:-1]]) if len(order) else order
    for run in np.split(order, starts[1:]):
        run = run.tolist()
        part = set(run)
        ext, now = _run_costs(st, run, part)
        total = sum(ext.values())
        open_ = sorted(g for g in ext if g not in closed)
        if not open_:
            continue
        t = min(open_, key=lambda g: total - ext[g])
        if total - ext[t] >= now - 1e-9:
            continue
        if all(_connected_rest(st, g, part) for g in {st.lab[x] for x in run} - {t}):
            for x in run:
                if st.lab[x] != t:
                    st.move(x, t)
    return np.array(st.lab, dtype=np.int64)
