"""Chinese names for the synthetic district: communities, compounds, roads, facilities.

Names are built from small character lists, shuffled by the caller's RNG, so they are
deterministic per seed. Every builder works on whole arrays (``numpy.strings``), never
one feature at a time, so a million building names cost well under a second.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "chinese_numeral",
    "numerals",
    "place_stems",
    "road_stems",
    "street_office_stems",
    "join",
]

# First and second characters of place-name stems (梅 + 园 -> 梅园社区, 梅园一村).
_FIRST = (
    "梅兰竹菊桃李杏桂荷松柏枫柳桐槐樟榆杨莲芙"
    "金银玉翠锦华彩虹霞云星月春夏秋冬晨曦朝阳"
    "东西南北中新南长永康安宁和平泰福瑞祥吉丰"
    "青白红紫蓝绿碧清明秀雅丽文德仁义礼信"
)
_SECOND = "园苑湾塘桥港湖溪泉岭山坊里巷庄洲浦亭林城门村庭湾墅岸浜"

# Road stems: a few real Suzhou names first (for flavour), then generated ones.
_ROADS = (
    "人民", "干将", "十全", "凤凰", "学士", "养育", "景德", "道前", "竹辉", "南园",
    "三香", "桐泾", "劳动", "胥江", "友新", "金门", "阊胥", "平门", "齐门", "相门",
    "白塔", "临顿", "百花", "东环", "西环", "北环", "南环", "富郎", "吴趋", "书院",
)

# Street offices (街道) of the default county (姑苏区), then generated stems.
_STREET_OFFICES = (
    "平江", "沧浪", "金阊", "观前", "双塔", "吴门桥", "虎丘", "白洋湾", "苏锦", "娄门",
)

_DIGITS = "零一二三四五六七八九"
_SUFFIXES = ("", "东", "西", "南", "北", "新")


def chinese_numeral(value: int) -> str:
    """Chinese numeral for 1–9,999 as used in names: 1 -> 一, 12 -> 十二, 105 -> 一百零五."""
    if value < 10:
        return _DIGITS[value]
    if value < 20:
        return "十" + (_DIGITS[value - 10] if value > 10 else "")
    if value < 100:
        tens, ones = divmod(value, 10)
        return _DIGITS[tens] + "十" + (_DIGITS[ones] if ones else "")
    if value < 1000:
        hundreds, rest = divmod(value, 100)
        tail = "" if rest == 0 else ("零" + _DIGITS[rest] if rest < 10 else _one_ten(rest))
        return _DIGITS[hundreds] + "百" + tail
    thousands, rest = divmod(value, 1000)
    tail = "" if rest == 0 else ("零" + chinese_numeral(rest) if rest < 100 else chinese_numeral(rest))
    return _DIGITS[thousands] + "千" + tail


def _one_ten(value: int) -> str:
    # Inside larger numbers 10-19 read 一十…, e.g. 115 -> 一百一十五.
    text = chinese_numeral(value)
    return "一" + text if text.startswith("十") else text


def numerals(values: np.ndarray) -> np.ndarray:
    """Chinese numerals of an integer array (computed once per distinct value)."""
    values = np.asarray(values, dtype=np.int64)
    if values.size == 0:
        return np.asarray([], dtype="<U1")
    distinct, inverse = np.unique(values, return_inverse=True)
    table = np.asarray([chinese_numeral(int(v)) for v in distinct])
    return table[inverse]


def _stem_pool(rng: np.random.Generator, first: str, second: str, count: int) -> np.ndarray:
    base = np.asarray([a + b for a in first for b in second])
    pools = [base[rng.permutation(base.size)]]
    suffix = 1
    while sum(p.size for p in pools) < count:
        tag = _SUFFIXES[suffix % len(_SUFFIXES)] if suffix < len(_SUFFIXES) else str(suffix)
        pools.append(np.strings.add(base[rng.permutation(base.size)], tag))
        suffix += 1
    return np.concatenate(pools)[:count]


def place_stems(rng: np.random.Generator, count: int) -> np.ndarray:
    """*count* distinct two-character place stems such as 梅园, 金湾 (shuffled by *rng*)."""
    return _stem_pool(rng, _FIRST, _SECOND, count)


def road_stems(rng: np.random.Generator, count: int) -> np.ndarray:
    """*count* road-name stems: real Suzhou ones first, then generated (人民, 干将, 青溪…)."""
    extra = _stem_pool(rng, _FIRST, "江河泉溪塘桥湖山林园浦亭", max(count - len(_ROADS), 1))
    return np.concatenate([np.asarray(_ROADS), extra])[:count]


def street_office_stems(rng: np.random.Generator, count: int) -> np.ndarray:
    """*count* street-office (街道) stems: 平江, 沧浪, … then generated ones."""
    extra = _stem_pool(rng, _FIRST, "江塘桥湖门山", max(count - len(_STREET_OFFICES), 1))
    return np.concatenate([np.asarray(_STREET_OFFICES), extra])[:count]


def join(*parts: np.ndarray | str) -> np.ndarray:
    """Element-wise concatenation of string arrays and scalars (``numpy.strings.add``)."""
    out: np.ndarray | str = parts[0]
    for part in parts[1:]:
        out = np.strings.add(out, part)
    return np.asarray(out)
