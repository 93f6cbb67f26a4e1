"""Row checks of register imports: every bad row listed with row number, problem and fix.

Rows arrive as a frame of strings with canonical column names (see :mod:`.columns`); the
checks are vectorised so a million rows take seconds. Row numbers are spreadsheet rows
(the header is row 1).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.chinacoords import transform_coords
from geo.crs import local_metric_crs
from geo.register.columns import MAX_LENGTHS
from geo.register.idnumber import id_number_problems, normalise_id, normalise_phone, phone_problems

__all__ = ["RowProblem", "Checked", "STAFF_ROLES", "PARTY_KINDS", "YES", "AMBIGUOUS", "address_index", "normalise_address", "BuildingMatcher",
           "check_rows"]

#: Staff roles: Chinese label -> stored value.
STAFF_ROLES: dict[str, str] = {"网格长": "grid_leader", "网格员": "grid_worker", "网格指导员": "instructor",
                               "指导员": "instructor", "楼栋长": "building_head", "单元长": "unit_head"}
#: Party organisation kinds: Chinese label -> stored value.
PARTY_KINDS: dict[str, str] = {"社区党委": "committee", "网格党支部": "branch", "党支部": "branch",
                               "党小组": "group", "网格党小组": "group", "楼栋党小组": "group"}
#: Value of :attr:`BuildingMatcher.addresses` for an address naming several buildings.
AMBIGUOUS = "\x00ambiguous"
YES = {"是", "y", "yes", "1", "true", "党员", "中共党员", "中共预备党员"}


@dataclass(frozen=True)
class RowProblem:
    """One problem of one row: spreadsheet row number, column, problem and fix (Chinese)."""

    row: int
    column: str
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"第 {self.row} 行 [{self.column}]：{self.problem}；{self.fix}"


@dataclass
class Checked:
    """The rows that passed (with ``building_id`` resolved where located) and every problem."""

    rows: pd.DataFrame
    problems: list[RowProblem] = field(default_factory=list)


def normalise_address(values: pd.Series) -> pd.Series:
    """NFKC (full-width digits to ASCII), no spaces: the key of the standard-address match."""
    s = values.fillna("").astype(str)
    return s.map(lambda v: unicodedata.normalize("NFKC", v)).str.replace(r"\s+", "", regex=True)


def address_index(addresses: pd.Series, building_ids: pd.Series) -> dict[str, str]:
    """Normalised address -> building id; addresses of several buildings map to :data:`AMBIGUOUS`."""
    frame = pd.DataFrame({"a": normalise_address(addresses).to_numpy(), "b": building_ids.astype(str).to_numpy()})
    frame = frame[frame["a"] != ""].drop_duplicates()
    counts = frame.groupby("a")["b"].transform("size")
    return dict(zip(frame["a"], frame["b"].where(counts == 1, AMBIGUOUS), strict=True))


@dataclass(frozen=True)
class BuildingMatcher:
    """What rows are matched against: building ids, standard addresses, footprints."""

    building_ids: frozenset[str]
    addresses: Mapping[str, str]
    footprints: gpd.GeoDataFrame  # building_id + geometry, any CRS
    tolerance_m: float = 30.0
    coords: str = "wgs84"

    def nearest(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Building id nearest each point within the tolerance (``None`` when none)."""
        out = np.full(lon.size, None, dtype=object)
        if lon.size == 0 or self.footprints.empty:
            return out
        x, y = transform_coords(lon, lat, source=self.coords, target="wgs84")  # type: ignore[arg-type]
        crs = local_metric_crs(self.footprints)
        fp = self.footprints.to_crs(crs)
        pts = gpd.GeoSeries(shapely.points(x, y), crs=4326).to_crs(crs).values
        tree = shapely.STRtree(np.asarray(fp.geometry.values))
        pairs = tree.query_nearest(pts, max_distance=self.tolerance_m, all_matches=False)
        out[pairs[0]] = fp["building_id"].to_numpy(dtype=object)[pairs[1]]
        return out


def _problems(mask: pd.Series, frame: pd.DataFrame, column: str, problem: str | pd.Series, fix: str) -> list[RowProblem]:
    idx = mask[mask.fillna(False).astype(bool)].index
    texts = [problem] * len(idx) if isinstance(problem, str) else problem.loc[idx].tolist()
    rows = frame.loc[idx, "_row"].astype(int).tolist()
    return [RowProblem(r, column, t, fix) for r, t in zip(rows, texts, strict=True)]


def _blank(frame: pd.DataFrame, name: str) -> pd.Series:
    return frame[name].fillna("").astype(str).str.strip() == "" if name in frame else pd.Series(True, index=frame.index)


def _required(frame: pd.DataFrame, names: tuple[str, ...]) -> list[RowProblem]:
    out: list[RowProblem] = []
    for name in names:
        out += _problems(_blank(frame, name), frame, name, "必填项为空", f"填写{name}后重新导入")
    return out


def _locate(frame: pd.DataFrame, m: BuildingMatcher) -> tuple[pd.Series, list[RowProblem]]:
    """Building of each row: by id, else by standard address, else by lon/lat."""
    bid = frame["building_id"].fillna("").astype(str).str.strip() if "building_id" in frame else \
        pd.Series("", index=frame.index)
    problems = _problems((bid != "") & ~bid.isin(m.building_ids), frame, "building_id",
                         "楼栋编号在工作区中不存在", "核对楼栋编号，或改填标准地址/经纬度")
    found = bid.where(bid.isin(m.building_ids), None).astype(object)
    if "address" in frame:
        addr = normalise_address(frame["address"])
        by_addr = addr.map(m.addresses).astype(object)
        todo = found.isna() & (addr != "")
        problems += _problems(todo & (by_addr == AMBIGUOUS), frame, "address", "地址对应多个楼栋",
                              "填写楼栋编号，或使用唯一的标准地址")
        found[todo] = by_addr[todo].where(by_addr[todo] != AMBIGUOUS, None)
    if "lon" in frame and "lat" in frame:
        lon = pd.to_numeric(frame["lon"], errors="coerce")
        lat = pd.to_numeric(frame["lat"], errors="coerce")
        has = lon.notna() & lat.notna()
        todo = found.isna() & has
        if todo.any():
            found[todo] = m.nearest(lon[todo].to_numpy(), lat[todo].to_numpy())
        problems += _problems(found.isna() & has, frame, "lon/lat",
                              f"{m.tolerance_m:g} 米内没有楼栋（坐标系 {m.coords}）",
                              "核对经纬度及其坐标系（--coords gcj02|bd09|wgs84）")
    unmatched = found.isna() & (bid == "")
    if "address" in frame:
        unmatched &= normalise_address(frame["address"]).map(m.addresses).ne(AMBIGUOUS)
    if "lon" in frame and "lat" in frame:
        unmatched &= ~(pd.to_numeric(frame["lon"], errors="coerce").notna()
                       & pd.to_numeric(frame["lat"], errors="coerce").notna())
    problems += _problems(unmatched, frame, "address", "地址无法匹配到楼栋",
                          "使用工作区的标准地址，或填写楼栋编号/经纬度")
    return found, problems


def _duplicates(frame: pd.DataFrame, key: pd.Series, column: str, what: str) -> list[RowProblem]:
    dup = key.duplicated(keep="first") & (key != "")
    first = key[~key.duplicated(keep="first")]
    first_row = pd.Series(frame.loc[first.index, "_row"].to_numpy(), index=first.to_numpy())
    texts = key[dup].map(lambda k: f"与第 {int(first_row[k])} 行{what}重复")
    return _problems(dup, frame, column, texts.reindex(frame.index), "删除重复行，或合并为一行")


def _id_checks(frame: pd.DataFrame) -> list[RowProblem]:
    ids = normalise_id(frame["id_number"])
    probs = id_number_problems(ids)
    bad = probs.notna() & (ids != "")
    out = _problems(bad, frame, "id_number", probs, "核对身份证号（GB 11643：18 位，末位校验码）")
    return out + _duplicates(frame, ids.where(~bad, ""), "id_number", "身份证号")


def _phone_checks(frame: pd.DataFrame, required: bool = False) -> list[RowProblem]:
    if "phone" not in frame:
        return []
    phones = normalise_phone(frame["phone"])
    probs = phone_problems(phones)
    return _problems(probs.notna() & (phones != ""), frame, "phone", probs,
                     "填写 11 位手机号（1 开头）或带区号的固定电话（如 021-12345678）")


def _residents(frame: pd.DataFrame, m: BuildingMatcher) -> Checked:
    problems = _required(frame, ("name", "id_number", "room")) + _id_checks(frame) + _phone_checks(frame)
    found, loc = _locate(frame, m)
    out = frame.assign(building_id=found)
    return Checked(out, problems + loc)


def _staff(frame: pd.DataFrame, grid_codes: frozenset[str], usernames: frozenset[str], m: BuildingMatcher) -> Checked:
    problems = _required(frame, ("name", "phone", "role")) + _phone_checks(frame)
    role = frame["role"].fillna("").astype(str).str.strip()
    problems += _problems((role != "") & ~role.isin(STAFF_ROLES), frame, "role", "未知角色",
                          f"角色须为 {'、'.join(STAFF_ROLES)} 之一")
    grid = frame["grid_code"].fillna("").astype(str).str.strip() if "grid_code" in frame else \
        pd.Series("", index=frame.index)
    needs_grid = role.isin(["网格长", "网格员", "网格指导员", "指导员"])
    problems += _problems(needs_grid & (grid == ""), frame, "grid_code", "网格长/网格员/指导员须填写网格编码",
                          "填写所在网格的编码（见网格方案）")
    problems += _problems((grid != "") & ~grid.isin(grid_codes), frame, "grid_code", "网格编码不是生效网格",
                          "核对编码，或先发布包含该网格的方案")
    bid = frame["building_id"].fillna("").astype(str).str.strip() if "building_id" in frame else \
        pd.Series("", index=frame.index)
    problems += _problems(role.isin(["楼栋长", "单元长"]) & (bid == ""), frame, "building_id",
                          "楼栋长/单元长须填写楼栋编号", "填写所负责楼栋的编号")
    problems += _problems((bid != "") & ~bid.isin(m.building_ids), frame, "building_id",
                          "楼栋编号在工作区中不存在", "核对楼栋编号")
    if "username" in frame:
        user = frame["username"].fillna("").astype(str).str.strip()
        problems += _problems((user != "") & ~user.isin(usernames), frame, "username", "账号不存在",
                              "先用 wangge users create 建账号，或留空")
    key = frame["name"].fillna("").astype(str) + "|" + normalise_phone(frame["phone"]) + "|" + role + "|" + grid + "|" + bid
    problems += _duplicates(frame, key, "name", "（姓名、电话、角色、网格、楼栋）")
    return Checked(frame.assign(role=role.map(STAFF_ROLES), grid_code=grid.where(grid != "", None)), problems)


def _keypersons(frame: pd.DataFrame, categories: Mapping[str, str]) -> Checked:
    problems = _required(frame, ("name", "id_number", "category")) + _id_checks(frame)
    cat = frame["category"].fillna("").astype(str).str.strip()
    code = cat.map(lambda c: categories.get(c) or (c if c in categories.values() else None))
    problems += _problems((cat != "") & code.isna(), frame, "category", "未知人员类别",
                          "使用类别表中的名称或代码（wangge register categories 可加载类别表）")
    risk = pd.to_numeric(frame["risk_level"], errors="coerce") if "risk_level" in frame else pd.Series(0, index=frame.index)
    given = frame["risk_level"].fillna("").astype(str).str.strip() != "" if "risk_level" in frame else risk.isna()
    problems += _problems(given & ~risk.between(0, 5), frame, "risk_level", "风险等级须为 0–5 的整数",
                          "填写 0（最低）到 5（最高）")
    return Checked(frame.assign(category=code, risk_level=risk.fillna(0)), problems)


def _party(frame: pd.DataFrame, grid_codes: frozenset[str], known_orgs: frozenset[str]) -> Checked:
    problems = _required(frame, ("kind", "name"))
    kind = frame["kind"].fillna("").astype(str).str.strip()
    problems += _problems((kind != "") & ~kind.isin(PARTY_KINDS), frame, "kind", "未知组织类型",
                          f"组织类型须为 {'、'.join(PARTY_KINDS)} 之一")
    parent = frame["parent"].fillna("").astype(str).str.strip() if "parent" in frame else pd.Series("", index=frame.index)
    names = set(frame["name"].fillna("").astype(str).str.strip()) | set(known_orgs)
    problems += _problems((parent != "") & ~parent.isin(names), frame, "parent", "上级组织不存在",
                          "先在同一文件或此前的导入中建立上级组织")
    problems += _problems(kind.map(PARTY_KINDS).isin(["branch", "group"]) & (parent == ""), frame, "parent",
                          "党支部/党小组须填写上级组织", "填写所属社区党委或网格党支部的名称")
    grid = frame["grid_code"].fillna("").astype(str).str.strip() if "grid_code" in frame else pd.Series("", index=frame.index)
    problems += _problems((grid != "") & ~grid.isin(grid_codes), frame, "grid_code", "网格编码不是生效网格",
                          "核对编码，或先发布包含该网格的方案")
    problems += _phone_checks(frame.rename(columns={"secretary_phone": "phone"}))
    problems += _duplicates(frame, frame["name"].fillna("").astype(str).str.strip(), "name", "组织名称")
    return Checked(frame.assign(kind=kind.map(PARTY_KINDS), parent=parent.where(parent != "", None)), problems)


def check_rows(kind: str, frame: pd.DataFrame, *, matcher: BuildingMatcher,
               categories: Mapping[str, str] | None = None, grid_codes: frozenset[str] = frozenset(),
               usernames: frozenset[str] = frozenset(), known_orgs: frozenset[str] = frozenset()) -> Checked:
    """Check every row of a register sheet of *kind* (canonical columns, strings).

    Parameters
    ----------
    kind
        ``residents``, ``staff``, ``keypersons`` or ``party``.
    frame
        Rows with canonical column names; a ``_row`` column gives the spreadsheet row
        (added when missing: header is row 1).
    matcher
        Building ids, standard addresses and footprints the rows are matched against.
    categories
        Key-person category name -> code (names and codes are both accepted).

    Returns
    -------
    Checked
        Rows (with ``building_id`` resolved for residents) and every problem, sorted by row.
    """
    frame = frame.reset_index(drop=True)
    if "_row" not in frame:
        frame = frame.assign(_row=np.arange(2, len(frame) + 2))
    if kind == "residents":
        checked = _residents(frame, matcher)
    elif kind == "staff":
        checked = _staff(frame, grid_codes, usernames, matcher)
    elif kind == "keypersons":
        checked = _keypersons(frame, categories or {})
    else:
        checked = _party(frame, grid_codes, known_orgs)
    checked.problems.extend(_too_long(kind, frame))
    checked.problems.sort(key=lambda p: (p.row, p.column))
    return checked


def _too_long(kind: str, frame: pd.DataFrame) -> list[RowProblem]:
    out: list[RowProblem] = []
    for name, limit in MAX_LENGTHS[kind].items():
        if name in frame:
            length = frame[name].fillna("").astype(str).str.strip().str.len()
            out += _problems(length > limit, frame, name, "超过 " + str(limit) + " 个字（" + length.astype(str) + " 个字）",
                             f"缩短到 {limit} 个字以内后重新导入")
    return out
