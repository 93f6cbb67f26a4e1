"""Columns of register imports: canonical fields per kind, Chinese header aliases, ``--field SRC=DST``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from geo.errors import LayerError

__all__ = ["KINDS", "FIELDS", "ALIASES", "MAX_LENGTHS", "Field", "parse_field_options", "map_headers", "known_headers"]

KINDS: tuple[str, ...] = ("residents", "staff", "keypersons", "party")


@dataclass(frozen=True)
class Field:
    """One canonical field: its name, Chinese label and whether every row needs it."""

    name: str
    label: str
    required: bool = False


_LOCATION = (Field("building_id", "楼栋编号"), Field("address", "地址"), Field("lon", "经度"), Field("lat", "纬度"))

FIELDS: dict[str, tuple[Field, ...]] = {
    "residents": (Field("name", "姓名", True), Field("id_number", "身份证号", True), Field("phone", "联系电话"),
                  Field("relation", "与户主关系"), *_LOCATION, Field("unit", "单元"), Field("room", "门牌", True),
                  Field("registered_address", "户籍地"), Field("lives_here", "是否实住"),
                  Field("party_member", "是否党员"), Field("party_org", "所属党组织"),
                  Field("party_center", "党员中心户")),
    "staff": (Field("name", "姓名", True), Field("phone", "联系电话", True), Field("role", "角色", True),
              Field("grid_code", "网格编码"), Field("building_id", "楼栋编号"), Field("unit", "单元"),
              Field("duties", "职责"), Field("start_date", "任职日期"), Field("end_date", "离任日期"),
              Field("username", "账号"), Field("photo", "照片")),
    "keypersons": (Field("name", "姓名", True), Field("id_number", "身份证号", True), Field("category", "类别", True),
                   Field("risk_level", "风险等级"), Field("note", "备注")),
    "party": (Field("kind", "组织类型", True), Field("name", "组织名称", True), Field("parent", "上级组织"),
              Field("grid_code", "网格编码"), Field("community_id", "社区编号"), Field("secretary", "书记"),
              Field("secretary_phone", "书记电话")),
}

#: Header spellings seen in street-office sheets -> canonical field (besides the labels above).
ALIASES: dict[str, str] = {
    "公民身份号码": "id_number", "身份证号码": "id_number", "证件号码": "id_number", "身份证": "id_number",
    "电话": "phone", "手机": "phone", "手机号": "phone", "手机号码": "phone", "联系方式": "phone",
    "关系": "relation", "楼栋": "building_id", "楼栋id": "building_id", "建筑编号": "building_id",
    "标准地址": "address", "住址": "address", "居住地址": "address", "门牌号": "room", "户号": "room",
    "房号": "room", "房间号": "room", "单元号": "unit", "户籍地址": "registered_address", "实住": "lives_here",
    "党员": "party_member", "政治面貌": "party_member", "党组织": "party_org", "人员类别": "category",
    "类型": "category", "风险": "risk_level", "职务": "role", "网格": "grid_code", "网格编号": "grid_code",
    "上级": "parent", "书记电话": "secretary_phone", "社区": "community_id", "用户名": "username",
    "longitude": "lon", "latitude": "lat", "经度(lon)": "lon", "纬度(lat)": "lat",
}

_PLACE_LENGTHS = {"building_id": 64, "unit": 32, "room": 32, "address": 300, "grid_code": 64}
#: Longest text each field may hold, per kind (the register's column sizes: longer text is a
#: row problem, never a database error).
MAX_LENGTHS: dict[str, dict[str, int]] = {
    "residents": {"name": 100, "relation": 32, "registered_address": 300, "party_org": 200, **_PLACE_LENGTHS},
    "staff": {"name": 100, "photo": 300, "username": 64, **_PLACE_LENGTHS},
    "keypersons": {"name": 100},
    "party": {"name": 200, "parent": 200, "community_id": 64, "grid_code": 64, "secretary": 100},
}


def parse_field_options(options: Iterable[str]) -> dict[str, str]:
    """``["户主姓名=name", ...]`` (``--field SRC=DST``) -> ``{"户主姓名": "name"}``."""
    out: dict[str, str] = {}
    for opt in options:
        src, sep, dst = opt.partition("=")
        if not sep or not src.strip() or not dst.strip():
            raise LayerError(f"--field {opt!r}: expected SRC=DST, e.g. --field 户主姓名=name",
                             code="bad_field_option", params={"option": opt})
        out[src.strip()] = dst.strip()
    return out


def _lookup(kind: str) -> dict[str, str]:
    fields = {f.name for f in FIELDS[kind]}
    return {f.label: f.name for f in FIELDS[kind]} | {n: n for n in fields} | {a: n for a, n in ALIASES.items()
                                                                                if n in fields}


def known_headers(kind: str, field_map: Mapping[str, str] | None = None) -> frozenset[str]:
    """Every header a sheet of *kind* may name a field with (labels, aliases, ``--field`` sources), stripped.

    Examples
    --------
    >>> {"姓名", "公民身份号码", "户主"} <= known_headers("residents", {"户主": "name"})
    True
    """
    if kind not in FIELDS:
        return frozenset(field_map or {})
    lookup = _lookup(kind)
    return frozenset({*lookup, *(k.lower() for k in lookup), *(field_map or {})})


def map_headers(kind: str, headers: Iterable[str], field_map: Mapping[str, str] | None = None) -> dict[str, str]:
    """Source header -> canonical field for a sheet of *kind*; unknown headers are ignored.

    Raises :class:`LayerError` naming missing required fields and unknown ``--field`` targets.

    Examples
    --------
    >>> map_headers("keypersons", ["姓名", "公民身份号码", "人员类别", "备注"])
    {'姓名': 'name', '公民身份号码': 'id_number', '人员类别': 'category', '备注': 'note'}
    """
    if kind not in FIELDS:
        raise LayerError(f"unknown register kind {kind!r}; use one of {', '.join(KINDS)}",
                         code="unknown_register_kind", params={"kind": kind, "choices": "、".join(KINDS)})
    fields = {f.name: f for f in FIELDS[kind]}
    lookup = _lookup(kind)
    extra = dict(field_map or {})
    bad = sorted(dst for dst in extra.values() if dst not in fields)
    if bad:
        raise LayerError(f"--field targets {', '.join(bad)} are not fields of {kind}; "
                         f"use one of {', '.join(fields)}",
                         code="unknown_field_target", params={"targets": "、".join(bad), "choices": "、".join(fields)})
    out: dict[str, str] = {}
    for h in headers:
        key = str(h).strip()
        name = extra.get(key) or lookup.get(key) or lookup.get(key.lower())
        if name and name not in out.values():
            out[str(h)] = name
    missing = [f"{f.label}({f.name})" for f in FIELDS[kind] if f.required and f.name not in out.values()]
    if kind in ("residents",) and not {"building_id", "address", "lon"} & set(out.values()):
        missing.append("楼栋编号、地址或经纬度之一(building_id / address / lon+lat)")
    if missing:
        raise LayerError(f"{kind} sheet lacks the columns {', '.join(missing)}; "
                         "rename the headers or map them with --field SRC=DST",
                         code="missing_columns", params={"columns": "、".join(missing)})
    return out
