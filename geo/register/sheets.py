"""Read a register sheet as street offices keep it: XLSX, or CSV in UTF-8 / GBK / GB18030."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
from python_calamine import CalamineError

from geo.errors import ReadError
from geo.spreadsheet import formula_restored

__all__ = ["ENCODINGS", "read_sheet"]

#: CSV encodings tried in order (GB18030 is a superset of GBK and GB2312).
ENCODINGS: tuple[str, ...] = ("utf-8-sig", "gb18030")


def _decode(data: bytes, name: str) -> str:
    for enc in ENCODINGS:
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    raise ReadError(f"{name}: not UTF-8, GBK or GB18030 text; save the sheet as CSV UTF-8 or XLSX", code="not_utf8")


def read_sheet(source: str | Path | bytes, *, name: str | None = None) -> pd.DataFrame:
    """All cells of the first sheet as strings (empty cells ``""``); *name* decides the format for bytes.

    Text our exports marked against formulas (``'=…``) reads back as it was (``=…``).

    Examples
    --------
    >>> read_sheet("姓名,单元\\n张三,1\\n".encode("gbk"), name="x.csv").to_dict("records")
    [{'姓名': '张三', '单元': '1'}]
    """
    label = name or (str(source) if not isinstance(source, bytes) else "upload")
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    suffix = Path(label).suffix.lower()
    try:
        if suffix in (".xlsx", ".xlsm", ".xls"):
            frame = pd.read_excel(io.BytesIO(data), dtype=str, engine="calamine")
        elif suffix in (".csv", ".txt", ""):
            frame = pd.read_csv(io.StringIO(_decode(data, label)), dtype=str, keep_default_na=False)
        else:
            raise ReadError(f"{label}: unknown sheet format {suffix!r}; use .xlsx or .csv",
                            code="unknown_sheet_format", params={"suffix": suffix})
    except (ValueError, pd.errors.ParserError, CalamineError) as exc:  # CalamineError: a file that is no workbook
        raise ReadError(f"{label}: cannot read the sheet ({exc}); check it opens in Excel and re-save",
                        code="unreadable_sheet") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return formula_restored(frame.fillna("").astype(str))
