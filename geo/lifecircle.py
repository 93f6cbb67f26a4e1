"""The life-circle checklist (生活圈配套设施) and the mapping of POIs to its categories.

A checklist row says which facility *category* a circle level requires. Levels are
ranks: 1 = 5-minute, 2 = 10-minute, 3 = 15-minute circle; their walking distances come
from the ``walk_levels_m`` setting (300 / 500 / 1,000 m by default), so changing a
distance never means editing the checklist. Levels are non-inclusive (GB 50180-2018):
a building lies in a complete circle of level L when every category of level L *and of
each lower level* is within *its own* level's distance.

Sources of the default rows (``source`` column):

* ``"DOMAIN §5"``: listed in the GB 50180-2018 summary table of ``DOMAIN.md`` §5, which
  the project took from the standard; confirmed against that table, not re-checked
  against the standard's text here.
* ``"appendix reading"``: our reading of the standard's Appendix B facility tables
  (e.g. that a hospital also serves the 15-minute health-centre need, or a supermarket
  the 10-minute fresh-food need); not confirmed against the standard.

The checklist is data: :func:`load_checklist` reads a CSV or JSON override with columns
``category, label_zh, level[, source]``.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from geo.errors import LayerError, ReadError

__all__ = [
    "ChecklistItem",
    "Checklist",
    "DEFAULT_CHECKLIST",
    "LEVEL_LABELS_ZH",
    "CATEGORY_LABELS_ZH",
    "OSM_TAG_CATEGORIES",
    "ZH_TYPE_CATEGORIES",
    "load_checklist",
    "level_distances",
    "categorise_points",
    "normalise_categories",
    "dropped_categories",
]

log = logging.getLogger(__name__)

LEVEL_LABELS_ZH: dict[int, str] = {1: "5分钟生活圈", 2: "10分钟生活圈", 3: "15分钟生活圈"}


@dataclass(frozen=True)
class ChecklistItem:
    """One required facility category: ``level`` 1 (5-min), 2 (10-min) or 3 (15-min)."""

    category: str
    label_zh: str
    level: int
    source: str = ""


@dataclass(frozen=True)
class Checklist:
    """The categories each circle level requires (non-inclusive levels)."""

    items: tuple[ChecklistItem, ...]

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for item in self.items:
            if item.category in seen:
                raise LayerError(f"checklist: category {item.category!r} listed twice; keep one row")
            if item.level < 1:
                raise LayerError(f"checklist: category {item.category!r} has level {item.level}; "
                                 "use 1 (5-min), 2 (10-min) or 3 (15-min)")
            seen.add(item.category)

    @property
    def categories(self) -> tuple[str, ...]:
        return tuple(i.category for i in self.items)

    @property
    def max_level(self) -> int:
        return max((i.level for i in self.items), default=0)

    def required_for(self, level: int) -> dict[str, int]:
        """Categories a complete circle of *level* needs, each with its own level."""
        return {i.category: i.level for i in self.items if i.level <= level}

    def label(self, category: str) -> str:
        """Chinese label of *category* (the category itself when unknown)."""
        for item in self.items:
            if item.category == category:
                return item.label_zh
        return CATEGORY_LABELS_ZH.get(category, category)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([vars(i) for i in self.items],
                            columns=["category", "label_zh", "level", "source"])


_D, _A = "DOMAIN §5", "appendix reading"
DEFAULT_CHECKLIST = Checklist((
    # 5-minute circle (~300 m)
    ChecklistItem("community_service_station", "社区服务站", 1, _D),
    ChecklistItem("kindergarten", "幼儿园", 1, _D),
    ChecklistItem("nursery", "托儿所", 1, _D),
    ChecklistItem("elderly_daycare", "老年人日间照料中心", 1, _D),
    ChecklistItem("health_station", "社区卫生服务站", 1, _D),
    ChecklistItem("convenience_store", "便利店", 1, _D),
    ChecklistItem("public_toilet", "公共厕所", 1, _D),
    ChecklistItem("bus_stop", "公交车站", 1, _D),
    # 10-minute circle (~500 m)
    ChecklistItem("primary_school", "小学", 2, _D),
    ChecklistItem("sports_ground_medium", "中型多功能运动场地", 2, _D),
    ChecklistItem("food_market", "菜市场或生鲜超市", 2, _D),
    # 15-minute circle (800-1,000 m)
    ChecklistItem("middle_school", "中学", 3, _D),
    ChecklistItem("sports_ground_large", "大型多功能运动场地", 3, _D),
    ChecklistItem("community_health_centre", "社区卫生服务中心", 3, _D),
    ChecklistItem("elderly_care_home", "养老院", 3, _D),
    ChecklistItem("culture_centre", "文化活动中心", 3, _D),
    ChecklistItem("street_service_centre", "街道服务中心", 3, _D),
    ChecklistItem("police_station", "派出所", 3, _D),
))

#: Labels of every category the mappings below can produce (checklist or not).
CATEGORY_LABELS_ZH: dict[str, str] = {
    **{i.category: i.label_zh for i in DEFAULT_CHECKLIST.items},
    "pharmacy": "药店",
    "fitness": "健身房",
    "park": "公园绿地",
    "playground": "儿童游乐场",
}

#: OSM ``key=value`` tags (and bare values of a single ``kind`` column, as in tile
#: schemas such as the Shanghai Bund extract) to categories. ``school`` is refined by
#: name (小学/中学/幼儿园); unnamed schools count as primary schools (appendix reading).
OSM_TAG_CATEGORIES: dict[str, str] = {
    "amenity=kindergarten": "kindergarten",
    "amenity=childcare": "nursery",
    "amenity=school": "primary_school",
    "amenity=clinic": "health_station",
    "amenity=doctors": "health_station",
    "healthcare=clinic": "health_station",
    "amenity=hospital": "community_health_centre",  # appendix reading
    "amenity=pharmacy": "pharmacy",
    "amenity=marketplace": "food_market",
    "shop=supermarket": "food_market",  # appendix reading: fresh supermarket
    "shop=greengrocer": "food_market",
    "shop=convenience": "convenience_store",
    "amenity=toilets": "public_toilet",
    "highway=bus_stop": "bus_stop",
    "amenity=bus_station": "bus_stop",
    "leisure=pitch": "sports_ground_medium",
    "leisure=sports_centre": "sports_ground_large",
    "leisure=stadium": "sports_ground_large",
    "leisure=fitness_centre": "fitness",
    "amenity=community_centre": "community_service_station",
    "amenity=social_facility": "elderly_daycare",  # appendix reading (social_facility=*)
    "social_facility=day_care": "elderly_daycare",
    "amenity=nursing_home": "elderly_care_home",
    "social_facility=nursing_home": "elderly_care_home",
    "social_facility=assisted_living": "elderly_care_home",
    "amenity=police": "police_station",
    "amenity=townhall": "street_service_centre",  # appendix reading
    "amenity=arts_centre": "culture_centre",  # appendix reading
    "amenity=library": "culture_centre",  # appendix reading
}

_BARE_KINDS: dict[str, str] = {
    tag.split("=", 1)[1]: cat for tag, cat in OSM_TAG_CATEGORIES.items()
} | {"fitness": "fitness", "toilets": "public_toilet", "convenience": "convenience_store",
      # common English / OSM category names of POI files (tags without their key)
      "grocery": "food_market", "supermarket": "food_market", "market": "food_market",
      "healthcare": "health_station", "clinic": "health_station", "doctor": "health_station",
      "health_centre": "community_health_centre", "hospital": "community_health_centre",
      "elderly": "elderly_daycare", "elderly_social": "elderly_daycare", "elderly_care": "elderly_care_home",
      "social_facility": "elderly_daycare", "nursing_home": "elderly_care_home",
      "park": "park", "garden": "park", "playground": "playground", "toilet": "public_toilet",
      "bus_station": "bus_stop", "bus": "bus_stop", "police": "police_station",
      "community_centre": "community_service_station", "library": "culture_centre",
      "childcare": "nursery", "nursery": "nursery", "kindergarten": "kindergarten",
      "primary_school": "primary_school", "middle_school": "middle_school"}

#: Common Chinese POI type names and name keywords, most specific first.
ZH_TYPE_CATEGORIES: tuple[tuple[str, str], ...] = (
    ("社区卫生服务中心", "community_health_centre"),
    ("社区卫生服务站", "health_station"),
    ("卫生服务中心", "community_health_centre"),
    ("卫生服务站", "health_station"),
    ("卫生站", "health_station"),
    ("卫生室", "health_station"),
    ("诊所", "health_station"),
    ("医院", "community_health_centre"),  # appendix reading
    ("幼儿园", "kindergarten"),
    ("托儿所", "nursery"),
    ("托育", "nursery"),
    ("小学", "primary_school"),
    ("初中", "middle_school"),
    ("中学", "middle_school"),
    ("菜市场", "food_market"),
    ("农贸市场", "food_market"),
    ("生鲜超市", "food_market"),
    ("便利店", "convenience_store"),
    ("超市", "food_market"),  # appendix reading
    ("公共厕所", "public_toilet"),
    ("公厕", "public_toilet"),
    ("公交车站", "bus_stop"),
    ("公交站", "bus_stop"),
    ("日间照料", "elderly_daycare"),
    ("托老所", "elderly_daycare"),
    ("养老院", "elderly_care_home"),
    ("敬老院", "elderly_care_home"),
    ("老年养护院", "elderly_care_home"),
    ("派出所", "police_station"),
    ("街道办事处", "street_service_centre"),
    ("社区服务中心", "street_service_centre"),
    ("社区服务站", "community_service_station"),
    ("居委会", "community_service_station"),
    ("居民委员会", "community_service_station"),
    ("文化活动中心", "culture_centre"),
    ("文化馆", "culture_centre"),
    ("图书馆", "culture_centre"),  # appendix reading
    ("体育场", "sports_ground_large"),
    ("体育中心", "sports_ground_large"),
    ("运动场", "sports_ground_medium"),
    ("球场", "sports_ground_medium"),
    ("药店", "pharmacy"),
    ("药房", "pharmacy"),
    ("儿童游乐", "playground"),
    ("公园", "park"),
    ("游园", "park"),
)

_ZH_PATTERN = re.compile("|".join(re.escape(k) for k, _ in ZH_TYPE_CATEGORIES))
_ZH_LOOKUP = dict(ZH_TYPE_CATEGORIES)
_REFINE_BY_NAME = {"primary_school"}  # tag too coarse: a school may be 幼儿园/小学/中学
_TAG_KEYS = ("amenity", "shop", "highway", "leisure", "healthcare", "social_facility")


def load_checklist(path: str | Path) -> Checklist:
    """Checklist from a CSV or JSON file with columns ``category, label_zh, level[, source]``.

    JSON is a list of objects with the same keys.
    """
    path = Path(path)
    try:
        if path.suffix.lower() == ".json":
            frame = pd.DataFrame(json.loads(path.read_text(encoding="utf-8")))
        else:
            frame = pd.read_csv(path, dtype={"category": str, "label_zh": str})
    except (OSError, ValueError) as exc:
        raise ReadError(f"load_checklist: cannot read {path}: {exc}") from exc
    missing = {"category", "label_zh", "level"} - set(frame.columns)
    if missing:
        raise LayerError(f"load_checklist: {path} lacks column(s) {', '.join(sorted(missing))}; "
                         "expected category, label_zh, level[, source]")
    frame["source"] = frame.get("source", pd.Series("", index=frame.index)).fillna("")
    items = tuple(ChecklistItem(str(r.category), str(r.label_zh), int(str(r.level)), str(r.source))
                  for r in frame.itertuples(index=False))
    log.info("loaded checklist of %d categories from %s", len(items), path)
    return Checklist(items)


def level_distances(levels_m: tuple[float, ...] | list[float], *,
                    checklist: Checklist | None = None) -> dict[int, float]:
    """Map level ranks (1, 2, ...) to walking distances, checking order and coverage."""
    levels = [float(x) for x in levels_m]
    if not levels or any(b <= a for a, b in zip(levels, levels[1:], strict=False)) or levels[0] <= 0:
        raise LayerError(f"walk levels must be positive and increasing (m); got {list(levels_m)}; "
                         "use e.g. 300,500,1000")
    if checklist is not None and checklist.max_level > len(levels):
        raise LayerError(f"the checklist uses level {checklist.max_level} but only "
                         f"{len(levels)} walk levels are set ({list(levels_m)}); add a distance")
    return {rank: d for rank, d in enumerate(levels, start=1)}


def _by_keyword(text: pd.Series) -> pd.Series:
    found = text.fillna("").astype(str).str.extract(f"({_ZH_PATTERN.pattern})", expand=False)
    return found.map(_ZH_LOOKUP)


def categorise_points(points: pd.DataFrame, *, name_field: str = "name",
                      type_field: str = "type") -> pd.Series:
    """Checklist category of each point from its tags, type name and name (None if unknown).

    Tries, in order: OSM ``key`` columns (``amenity``, ``shop``, ``highway``, ``leisure``,
    ``healthcare``, ``social_facility``), a bare ``kind`` column (tile schemas), a Chinese
    POI ``type`` column, then Chinese keywords in the name. A school tag is refined by its
    name (幼儿园 / 小学 / 中学). Tags win over names because bus stops are often named
    after the school they serve.

    Examples
    --------
    >>> import pandas as pd
    >>> categorise_points(pd.DataFrame({"kind": ["bus_stop", "school", "cafe"],
    ...                                 "name": ["建国中学", "建国中学", None]})).tolist()
    ['bus_stop', 'middle_school', None]
    """
    out = pd.Series(None, index=points.index, dtype="object")
    for key in _TAG_KEYS:
        if key in points.columns:
            tags = key + "=" + points[key].astype("string")
            out = out.fillna(tags.map(OSM_TAG_CATEGORIES).astype("object"))
    if "kind" in points.columns:
        out = out.fillna(points["kind"].map(_BARE_KINDS).astype("object"))
    names = (points[name_field] if name_field in points.columns
             else pd.Series(None, index=points.index, dtype="object"))
    by_name = _by_keyword(names)
    refine = out.isin(_REFINE_BY_NAME) & by_name.isin(
        ["kindergarten", "primary_school", "middle_school"])
    out = out.where(~refine, by_name)
    if type_field in points.columns:
        out = out.fillna(_by_keyword(points[type_field]).astype("object"))
    out = out.fillna(by_name.astype("object"))
    out = out.astype("object").where(out.notna(), None)
    log.info("categorised %d of %d points into %d categories", int(out.notna().sum()),
             len(out), out.nunique())
    return out.rename("category")


def normalise_categories(points: pd.DataFrame, *, category_field: str = "category",
                         name_field: str = "name") -> pd.Series:
    """Checklist categories of points whose *category_field* holds raw tags or Chinese types.

    Values that already are known categories stay; others (e.g. OSM ``toilets``,
    ``school``, 公共厕所) are mapped like a ``kind`` column, refined by name; the rest
    become None.

    Examples
    --------
    >>> import pandas as pd
    >>> normalise_categories(pd.DataFrame({"category": ["toilets", "bus_stop", "公共厕所", "bar"]})).tolist()
    ['public_toilet', 'bus_stop', 'public_toilet', None]
    """
    if category_field not in points.columns:
        raise LayerError(f"normalise_categories: the service points have no {category_field!r} "
                         f"column; columns are {', '.join(map(str, points.columns))}")
    raw = points[category_field].astype("string").str.strip().str.lower().astype("object")
    raw = raw.where(raw.notna(), None)
    known = raw.where(raw.isin(list(CATEGORY_LABELS_ZH)))
    frame = pd.DataFrame({"kind": raw, "type": raw}, index=points.index)
    if name_field in points.columns:
        frame["name"] = points[name_field]
    mapped = categorise_points(frame, name_field="name", type_field="type")
    out = known.fillna(mapped)
    return out.astype("object").where(out.notna(), None).rename("category")


def dropped_categories(raw: pd.Series, mapped: pd.Series) -> pd.DataFrame:
    """The raw category values that mapped to no category, with their point counts.

    Parameters
    ----------
    raw : Series
        Category values as given (e.g. the services' ``category`` column).
    mapped : Series
        :func:`normalise_categories` of the same points (None where unknown).

    Returns
    -------
    DataFrame
        Columns ``category`` (the raw value; ``(空)`` for points without one) and
        ``points``, most frequent first: every point left out of the analysis.

    Examples
    --------
    >>> import pandas as pd
    >>> raw = pd.Series(["bar", "toilets", "bar", None])
    >>> dropped_categories(raw, normalise_categories(pd.DataFrame({"category": raw}))).values.tolist()
    [['bar', 2], ['(空)', 1]]
    """
    lost = raw[mapped.isna().to_numpy()].astype("object")
    lost = lost.where(lost.notna() & (lost.astype(str).str.strip() != ""), "(空)").astype(str)
    counts = lost.value_counts(sort=False)
    out = pd.DataFrame({"category": counts.index.astype(str), "points": counts.to_numpy(dtype="int64")})
    out = out.sort_values(["points", "category"], ascending=[False, True], kind="stable").reset_index(drop=True)
    if len(out):
        log.info("service points: %d of %d dropped, in %d unknown categories", int(out["points"].sum()),
                 len(raw), len(out))
    return out
