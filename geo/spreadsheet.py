"""Tables people open in Excel or WPS: no cell runs as a formula, and our own files read back intact.

Names, descriptions and work-order numbers come from people's files and forms. A text cell
starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return is a formula to Excel/WPS
(``=HYPERLINK(…)``, ``=cmd|…``: OWASP "CSV injection"). Exports prefix such text with ``'``
(Excel's own text marker); :func:`~geo.register.sheets.read_sheet` drops that marker again, so
an exported sheet imports back to the same values. Numbers stay numbers. XLSX cannot hold
control characters other than tab, line feed and carriage return: they are written as U+FFFD.
"""

from __future__ import annotations

import io
import re

import pandas as pd

__all__ = ["FORMULA_PREFIXES", "SHEET_TYPES", "neutralise_formula", "formula_safe", "restore_formula_text",
           "formula_restored", "xlsx_cell", "table_bytes"]

#: Leading characters that make a spreadsheet cell a formula.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
#: Export types of :func:`table_bytes` -> MIME type.
SHEET_TYPES: dict[str, str] = {"csv": "text/csv; charset=utf-8",
                               "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
_XML_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def neutralise_formula(value: object) -> object:
    """*value*, prefixed with ``'`` when it is text a spreadsheet would run as a formula.

    Examples
    --------
    >>> neutralise_formula("=1+2"), neutralise_formula(-3), neutralise_formula("3号楼")
    ("'=1+2", -3, '3号楼')
    """
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def restore_formula_text(value: str) -> str:
    """The inverse of :func:`neutralise_formula` on text read from a sheet.

    Examples
    --------
    >>> restore_formula_text("'=1+2"), restore_formula_text("'引号"), restore_formula_text("-3")
    ('=1+2', "'引号", '-3')
    """
    if len(value) > 1 and value[0] == "'" and value[1:].startswith(FORMULA_PREFIXES):
        return value[1:]
    return value


def formula_safe(df: pd.DataFrame) -> pd.DataFrame:
    """Every text cell of *df* neutralised (see :func:`neutralise_formula`); other cells unchanged."""
    out = df.copy()
    for c in out.columns:
        if out[c].dtype == object or pd.api.types.is_string_dtype(out[c]):
            out[c] = out[c].map(neutralise_formula, na_action="ignore")
    return out


def formula_restored(df: pd.DataFrame) -> pd.DataFrame:
    """A sheet of strings (as read) with every neutralised cell restored (see :func:`restore_formula_text`)."""
    return df.apply(lambda col: col.map(restore_formula_text)) if len(df.columns) else df


def _xlsx_text(value: object) -> object:
    return _XML_ILLEGAL.sub("\ufffd", value) if isinstance(value, str) else value


def xlsx_cell(value: object) -> object:
    """*value* ready for an XLSX cell: formula text neutralised, characters XML cannot hold replaced."""
    return _xlsx_text(neutralise_formula(value))


def table_bytes(table: pd.DataFrame, kind: str, *, sheet_name: str = "Sheet1", index: bool = False) -> bytes:
    """*table* as a formula-safe CSV (UTF-8 with BOM, as Excel opens it) or XLSX file.

    Examples
    --------
    >>> table_bytes(pd.DataFrame({"名称": ["=1+2"], "户数": [3]}), "csv").decode("utf-8-sig").splitlines()
    ['名称,户数', "'=1+2,3"]
    """
    safe = formula_safe(table.reset_index() if index else table)
    safe.columns = [str(neutralise_formula(str(c))) for c in safe.columns]
    if kind == "csv":
        return safe.to_csv(index=False).encode("utf-8-sig")
    if kind == "xlsx":
        buf = io.BytesIO()
        safe.apply(lambda col: col.map(_xlsx_text, na_action="ignore") if col.dtype == object else col) \
            .to_excel(buf, index=False, sheet_name=sheet_name[:31])
        return buf.getvalue()
    raise ValueError(f"unknown sheet type {kind!r}; use one of {', '.join(SHEET_TYPES)}")
