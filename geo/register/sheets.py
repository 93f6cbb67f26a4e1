"""Read a register sheet as street offices keep it: XLSX, or CSV in UTF-8 / GBK / GB18030.

Street-office sheets are untidy: a merged title row (``某某社区居民登记表``) or a row of
merged group headings above the real header, blank rows between blocks of people.
:func:`read_register_sheet` finds the header row by the headers it knows, skips blank rows
and keeps each row's spreadsheet number in ``_row`` so problems name the row a person sees.
"""

from __future__ import annotations

import io
from collections.abc import Collection, Mapping
from pathlib import Path

import pandas as pd
from python_calamine import CalamineError

from geo.errors import ReadError
from geo.register.columns import known_headers
from geo.spreadsheet import formula_restored

__all__ = ["ENCODINGS", "HEADER_SEARCH_ROWS", "read_sheet", "read_sheet_rows", "read_register_sheet"]

#: CSV encodings tried in order (GB18030 is a superset of GBK and GB2312).
ENCODINGS: tuple[str, ...] = ("utf-8-sig", "gb18030")
#: How many rows from the top may hold the header row (title and group-heading rows above it).
HEADER_SEARCH_ROWS = 10


def _decode(data: bytes, name: str) -> str:
    for enc in ENCODINGS:
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    raise ReadError(f"{name}: not UTF-8, GBK or GB18030 text; save the sheet as CSV UTF-8 or XLSX", code="not_utf8")


def _read_cells(source: str | Path | bytes, name: str | None, *, header: int | None) -> pd.DataFrame:
    label = name or (str(source) if not isinstance(source, bytes) else "upload")
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    suffix = Path(label).suffix.lower()
    try:
        if suffix in (".xlsx", ".xlsm", ".xls"):
            frame = pd.read_excel(io.BytesIO(data), dtype=str, engine="calamine", header=header)
        elif suffix in (".csv", ".txt", ""):
            frame = pd.read_csv(io.StringIO(_decode(data, label)), dtype=str, keep_default_na=False, header=header,
                                skip_blank_lines=header is not None)
        else:
            raise ReadError(f"{label}: unknown sheet format {suffix!r}; use .xlsx or .csv",
                            code="unknown_sheet_format", params={"suffix": suffix})
    except (ValueError, pd.errors.ParserError, CalamineError) as exc:  # CalamineError: a file that is no workbook
        raise ReadError(f"{label}: cannot read the sheet ({exc}); check it opens in Excel and re-save",
                        code="unreadable_sheet") from None
    return frame.fillna("").astype(str)


def read_sheet(source: str | Path | bytes, *, name: str | None = None) -> pd.DataFrame:
    """All cells of the first sheet as strings (empty cells ``""``); *name* decides the format for bytes.

    Text our exports marked against formulas (``'=…``) reads back as it was (``=…``).

    Examples
    --------
    >>> read_sheet("姓名,单元\\n张三,1\\n".encode("gbk"), name="x.csv").to_dict("records")
    [{'姓名': '张三', '单元': '1'}]
    """
    frame = _read_cells(source, name, header=0)
    frame.columns = [str(c).strip() for c in frame.columns]
    return formula_restored(frame)


def _header_row(cells: pd.DataFrame, known: frozenset[str]) -> int:
    """Position of the row among the first :data:`HEADER_SEARCH_ROWS` naming the most known headers (first wins)."""
    top = cells.head(HEADER_SEARCH_ROWS)
    hits = [sum(1 for v in row if v.strip() in known or v.strip().lower() in known) for row in top.itertuples(index=False)]
    return max(range(len(hits)), key=lambda i: (hits[i], -i)) if hits else 0


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        out.append(n if n not in seen else f"{n}.{seen[n]}")
        seen[n] = seen.get(n, 0) + 1
    return out


def read_sheet_rows(source: str | Path | bytes, *, known: Collection[str], name: str | None = None) -> pd.DataFrame:
    """The rows of a sheet under its header row, with ``_row`` (the row number a spreadsheet shows).

    The header row is the one among the first :data:`HEADER_SEARCH_ROWS` that names the most
    of the *known* headers (a merged title row or a row of merged group headings above it is
    skipped); rows with every cell empty are dropped; formula-marked text is restored as in
    :func:`read_sheet`. Columns with an empty header are dropped.

    Raises
    ------
    geo.errors.ReadError
        The sheet cannot be read.

    Examples
    --------
    >>> csv = "某某社区居民登记表,,\\n姓名,身份证号,门牌\\n,,\\n张三,1,101\\n".encode("gbk")
    >>> read_sheet_rows(csv, known={"姓名", "门牌"}, name="x.csv").to_dict("records")
    [{'姓名': '张三', '身份证号': '1', '门牌': '101', '_row': 4}]
    """
    cells = _read_cells(source, name, header=None)
    at = _header_row(cells, frozenset(known) | frozenset(k.lower() for k in known))
    frame = cells.iloc[at + 1:].copy()
    frame.columns = _unique([str(c).strip() for c in cells.iloc[at]]) if len(cells) else []
    frame = frame.loc[:, [c for c in frame.columns if c]]
    frame = frame[frame.apply(lambda col: col.str.strip() != "").any(axis=1)] if len(frame.columns) else frame.iloc[:0]
    frame = formula_restored(frame)
    return frame.assign(_row=(frame.index + 1).astype(int)).reset_index(drop=True)


def read_register_sheet(source: str | Path | bytes, *, kind: str, name: str | None = None,
                        field_map: Mapping[str, str] | None = None) -> pd.DataFrame:
    """:func:`read_sheet_rows` with the headers a register sheet of *kind* may use (labels, aliases, *field_map*).

    Examples
    --------
    >>> csv = "某某社区居民登记表,,\\n姓名,身份证号,门牌\\n,,\\n张三,1,101\\n".encode("gbk")
    >>> read_register_sheet(csv, kind="residents", name="x.csv").to_dict("records")
    [{'姓名': '张三', '身份证号': '1', '门牌': '101', '_row': 4}]
    """
    return read_sheet_rows(source, known=known_headers(kind, field_map), name=name)
