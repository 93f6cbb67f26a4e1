"""Resident ID numbers (GB 11643-1999) and phone numbers: checks and masks, vectorised.

An 18-character ID number is 6 digits of region, 8 of birth date, 3 of sequence and a
check character (``0``-``9`` or ``X``) computed with ISO 7064 MOD 11-2.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

__all__ = [
    "id_check_char",
    "id_number_problems",
    "phone_problems",
    "mask_id",
    "mask_phone",
    "mask_numbers_in_text",
    "mask_contact",
    "normalise_id",
    "normalise_phone",
]

_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
_CHECK = np.array(list("10X98765432"))
_ID_SHAPE = re.compile(r"^\d{17}[\dX]$")
_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_LANDLINE = re.compile(r"^0\d{2,3}-?\d{7,8}$")
#: A run of digits long enough to be an ID number, a phone or a bank card (with an ID's X).
_LONG_NUMBER = re.compile(r"\d[\d\- ]{5,}\d[\dXx]?")


def id_check_char(first17: str) -> str:
    """The GB 11643 check character of the first 17 digits.

    Examples
    --------
    >>> id_check_char("11010519491231002")
    'X'
    """
    digits = np.frombuffer(first17.encode("ascii"), dtype=np.uint8) - 48
    return str(_CHECK[int((digits * _WEIGHTS).sum() % 11)])


def normalise_id(values: pd.Series) -> pd.Series:
    """Strip spaces, upper-case a trailing ``x``; empty cells become ``""``."""
    return values.fillna("").astype(str).str.strip().str.replace(" ", "", regex=False).str.upper()


def normalise_phone(values: pd.Series) -> pd.Series:
    """Strip spaces and a leading ``+86``/``86`` country code from mobile numbers."""
    s = values.fillna("").astype(str).str.strip().str.replace(r"[\s]", "", regex=True)
    s = s.str.replace(r"\.0$", "", regex=True)  # numbers read from Excel as floats
    return s.str.replace(r"^(\+86|0086|86)(?=1\d{10}$)", "", regex=True)


def _check_chars(ids: pd.Series) -> np.ndarray:
    body = ids.str.slice(0, 17).to_numpy(dtype="U17")
    codes = body.view(np.uint32).reshape(len(body), 17).astype(np.int64) - 48
    return _CHECK[(codes * _WEIGHTS).sum(axis=1) % 11]


def id_number_problems(ids: pd.Series) -> pd.Series:
    """Per value: ``None`` when a valid 18-character ID number, else the problem in Chinese.

    Checks shape (18 characters, digits with an optional final X), birth date and the
    check character. Empty values are problems too (callers skip optional columns).

    Examples
    --------
    >>> id_number_problems(pd.Series(["11010519491231002X", "110105194912310021", "123"])).tolist()[1:]
    ['校验位错误（应为 X，实为 1）', '应为 18 位（数字，末位可为 X），实为 3 位']
    """
    ids = normalise_id(ids)
    out = pd.Series([None] * len(ids), index=ids.index, dtype=object)
    shaped = ids.str.match(_ID_SHAPE).to_numpy(dtype=bool)
    bad_shape = ~shaped
    out[bad_shape] = [f"应为 18 位（数字，末位可为 X），实为 {len(v)} 位" if len(v) != 18 else "含有非法字符（只允许数字，末位可为 X）"
                      for v in ids[bad_shape]]
    ok = ids[shaped]
    if ok.empty:
        return out
    born = pd.to_datetime(ok.str.slice(6, 14), format="%Y%m%d", errors="coerce")
    bad_date = born.isna() | (born < pd.Timestamp("1900-01-01")) | (born > pd.Timestamp.now())
    out.loc[bad_date[bad_date].index] = [f"出生日期 {v[6:14]} 不是有效日期" for v in ok[bad_date]]
    good = ok[~bad_date]
    if good.empty:
        return out
    expected = _check_chars(good)
    actual = good.str.slice(17).to_numpy(dtype="U1")
    wrong = expected != actual
    out.loc[good.index[wrong]] = [f"校验位错误（应为 {e}，实为 {a}）" for e, a in zip(expected[wrong], actual[wrong], strict=True)]
    return out


def phone_problems(phones: pd.Series) -> pd.Series:
    """Per value: ``None`` for an 11-digit mobile (1[3-9]…) or a landline (0xx-xxxxxxx), else the problem."""
    p = normalise_phone(phones)
    ok = p.str.match(_MOBILE) | p.str.match(_LANDLINE)
    out = pd.Series([None] * len(p), index=p.index, dtype=object)
    out[~ok] = [f"号码 {_mask_any(v)} 格式不对" for v in p[~ok]]
    return out


def _mask_any(value: str) -> str:
    return value[:3] + "*" * max(0, len(value) - 7) + value[-4:] if len(value) > 7 else "*" * len(value)


def _masked(s: pd.Series) -> pd.Series:
    """First 3 and last 4 characters kept, the middle starred (an empty series stays an empty text series:
    its stars were an int column and the sum a TypeError, a 500 on a register sheet with no rows)."""
    stars = pd.Series("*", index=s.index, dtype=object).str.repeat(s.str.len().sub(7).clip(lower=0).astype(int).tolist())
    return (s.str.slice(0, 3) + stars.astype(s.dtype) + s.str.slice(-4)).astype(s.dtype)


def mask_id(values: pd.Series) -> pd.Series:
    """``110***********1234``: first 3 and last 4 characters kept.

    Examples
    --------
    >>> mask_id(pd.Series(["11010519491231002X"])).tolist()
    ['110***********002X']
    """
    return _masked(normalise_id(values))


def mask_phone(values: pd.Series) -> pd.Series:
    """``138****5678``: first 3 and last 4 digits kept (landlines likewise)."""
    return _masked(normalise_phone(values))


def mask_numbers_in_text(text: str | None) -> str | None:
    """*text* with every run of 7+ digits masked like an ID or phone (first 3, last 4 kept).

    For free text that may hold a number someone typed, e.g. a search term written to the
    audit log: the tail stays, so the entry still says what was looked for.

    Examples
    --------
    >>> mask_numbers_in_text("找 11010519491231002X 和 13812345678，3号楼")
    '找 110***********002X 和 138****5678，3号楼'
    """
    if text is None:
        return None

    def _mask(m: re.Match[str]) -> str:
        digits = re.sub(r"[\- ]", "", m.group())
        return _mask_any(digits) if len(digits) >= 7 else m.group()

    return _LONG_NUMBER.sub(_mask, text)


def mask_contact(contact: str | None) -> str | None:
    """A reporter's contact masked: numbers as :func:`mask_numbers_in_text`, an e-mail's name part hidden.

    Examples
    --------
    >>> mask_contact("13812345678"), mask_contact("li.ming@example.org")
    ('138****5678', 'l***@example.org')
    """
    if not contact:
        return contact
    if "@" in contact:
        name, _, domain = contact.rpartition("@")
        return f"{name[:1]}***@{mask_numbers_in_text(domain)}"
    return mask_numbers_in_text(contact)
