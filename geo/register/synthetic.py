"""Seeded synthetic register sheets (demo, tests, bench): clearly synthetic people.

ID numbers start with region ``99`` (no such province in GB/T 2260) and carry a valid
GB 11643 check character; phones start with ``199 0``; names are drawn from common
surnames and given-name characters. Output sheets use the Chinese headers street offices
use, so they go through the same import as real files.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["SYNTHETIC_ID_PREFIX", "synthetic_ids", "synthetic_names", "synthetic_phones", "synthetic_residents"]

SYNTHETIC_ID_PREFIX = "99"
_SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈")
_GIVEN = list("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建国志军文辉力明永健世广海云")
_RELATIONS = np.array(["户主", "配偶", "子", "女", "父亲", "母亲", "孙子", "孙女"])
_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
_CHECK = np.array(list("10X98765432"))


def synthetic_ids(rng: np.random.Generator, n: int) -> np.ndarray:
    """*n* distinct fake ID numbers with valid check characters (region 99xxxx)."""
    born = np.datetime64("1940-01-01") + rng.integers(0, 365 * 80, n).astype("timedelta64[D]")
    month = born.astype("datetime64[M]")
    ymd = ((month.astype("datetime64[Y]").astype(np.int64) + 1970) * 10_000
           + (month.astype(np.int64) % 12 + 1) * 100 + (born - month).astype(np.int64) + 1)
    # 17-digit body as one integer: region (99 + 4 random digits), birth date, sequence.
    body = ((int(SYNTHETIC_ID_PREFIX) * 10_000 + rng.integers(0, 10_000, n)) * 10**11
            + ymd * 1000 + np.arange(n) % 1000)
    digits = body[:, None] // 10 ** np.arange(16, -1, -1, dtype=np.int64) % 10
    ids = (pd.Series(body).astype(str) + _CHECK[(digits * _WEIGHTS).sum(axis=1) % 11]).to_numpy(dtype=object)
    # Region + date + sequence can repeat in rare cases: draw those again.
    dup = pd.Series(body).duplicated().to_numpy()
    return ids if not dup.any() else np.concatenate([ids[~dup], synthetic_ids(rng, int(dup.sum()))])


def synthetic_names(rng: np.random.Generator, n: int) -> np.ndarray:
    """*n* plausible two- or three-character names."""
    s = np.array(_SURNAMES)[rng.integers(0, len(_SURNAMES), n)]
    g1 = np.array(_GIVEN)[rng.integers(0, len(_GIVEN), n)]
    g2 = np.where(rng.random(n) < 0.6, np.array(_GIVEN)[rng.integers(0, len(_GIVEN), n)], "")
    return np.char.add(np.char.add(s, g1), g2)


def synthetic_phones(rng: np.random.Generator, n: int) -> np.ndarray:
    """*n* fake mobile numbers ``1990xxxxxxx``."""
    return np.char.add("1990", np.char.zfill(rng.integers(0, 10_000_000, n).astype(str), 7))


def synthetic_residents(buildings: pd.DataFrame, *, seed: int = 42, max_rows: int | None = None) -> pd.DataFrame:
    """A residents sheet (Chinese headers) for *buildings* (``building_id``, ``households``).

    Each household gets 1–4 residents; rooms are numbered per floor of two entrances.

    Examples
    --------
    >>> sheet = synthetic_residents(pd.DataFrame({"building_id": ["b1"], "households": [2]}), seed=1)
    >>> list(sheet.columns)[:4], sheet["楼栋编号"].unique().tolist()
    (['姓名', '身份证号', '联系电话', '与户主关系'], ['b1'])
    """
    rng = np.random.default_rng(seed)
    hh = buildings["households"].fillna(0).astype(int).clip(lower=0).to_numpy()
    building = np.repeat(buildings["building_id"].astype(str).to_numpy(), hh)
    k = np.arange(int(hh.sum())) - np.repeat(np.cumsum(hh) - hh, hh)
    size = rng.integers(1, 5, building.size)
    if max_rows is not None and size.sum() > max_rows:
        keep = np.cumsum(size) <= max_rows
        building, k, size = building[keep], k[keep], size[keep]
    n = int(size.sum())
    rb, rk = np.repeat(building, size), np.repeat(k, size)
    member = np.arange(n) - np.repeat(np.cumsum(size) - size, size)
    unit = (rk % 2 + 1).astype(str)
    room = np.char.add((rk // 2 // 2 + 1).astype(str), np.char.zfill((rk // 2 % 2 + 1).astype(str), 2))
    phone = np.where(rng.random(n) < 0.8, synthetic_phones(rng, n), "")
    return pd.DataFrame({"姓名": synthetic_names(rng, n), "身份证号": synthetic_ids(rng, n), "联系电话": phone,
                         "与户主关系": _RELATIONS[np.minimum(member, len(_RELATIONS) - 1)], "楼栋编号": rb,
                         "单元": unit, "门牌": room, "是否实住": np.where(rng.random(n) < 0.9, "是", "否")})
