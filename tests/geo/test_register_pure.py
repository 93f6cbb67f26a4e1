"""Pure register logic: GB 11643 checks, masks, header mapping, categories, synthetic sheets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from geo.errors import LayerError, ReadError
from geo.register.categories import DEFAULT_CATEGORIES, read_categories, visit_days
from geo.register.columns import map_headers, parse_field_options
from geo.register.idnumber import (
    id_check_char,
    id_number_problems,
    mask_id,
    mask_phone,
    phone_problems,
)
from geo.register.sheets import read_sheet
from geo.register.synthetic import synthetic_ids, synthetic_residents


def _with_check(body: str) -> str:
    # Independent reference: ISO 7064 MOD 11-2 written out the textbook way.
    total = sum(int(c) * (2 ** (17 - i) % 11) for i, c in enumerate(body))
    return body + "10X98765432"[total % 11]


@pytest.mark.parametrize("body", ["11010519491231002", "44030119900101123", "31011520001231456"])
def test_check_character_matches_the_textbook_formula(body: str) -> None:
    assert body + id_check_char(body) == _with_check(body)
    assert id_number_problems(pd.Series([_with_check(body)])).tolist() == [None]


def test_id_problems_name_what_is_wrong() -> None:
    good = _with_check("11010519491231002")
    wrong = good[:17] + ("0" if good[17] != "0" else "1")
    probs = id_number_problems(pd.Series([good, wrong, good[:10], "1101051949123100A2", _with_check("11010519491332002"),
                                          good.lower()])).tolist()
    assert probs[0] is None and probs[5] is None
    assert probs[1].startswith("校验位错误")
    assert "实为 10 位" in probs[2]
    assert "非法字符" in probs[3]
    assert "不是有效日期" in probs[4]


def test_phones_and_masks() -> None:
    probs = phone_problems(pd.Series(["13812345678", "+86 138 1234 5678", "021-12345678", "12345678901", "1381234"]))
    assert probs.tolist()[:3] == [None, None, None] and probs.notna().tolist()[3:] == [True, True]
    assert "12345678901" not in probs.iloc[3]  # problem texts are masked too
    assert mask_phone(pd.Series(["13812345678"])).tolist() == ["138****5678"]
    assert mask_id(pd.Series(["110105194912310021"])).tolist() == ["110***********0021"]


def test_header_mapping_aliases_field_options_and_missing_columns() -> None:
    m = map_headers("residents", ["姓名", "公民身份号码", "手机", "楼栋", "单元", "户号"])
    assert m == {"姓名": "name", "公民身份号码": "id_number", "手机": "phone", "楼栋": "building_id",
                 "单元": "unit", "户号": "room"}
    fields = parse_field_options(["户主姓名=name", "证件=id_number"])
    assert map_headers("keypersons", ["户主姓名", "证件", "类别"], fields)["证件"] == "id_number"
    with pytest.raises(LayerError, match=r"lacks the columns 身份证号\(id_number\)"):
        map_headers("residents", ["姓名", "楼栋", "门牌"])
    with pytest.raises(LayerError, match="楼栋编号、地址或经纬度之一"):
        map_headers("residents", ["姓名", "身份证号", "门牌"])
    with pytest.raises(LayerError, match="expected SRC=DST"):
        parse_field_options(["姓名"])
    with pytest.raises(LayerError, match="not fields of staff"):
        map_headers("staff", ["姓名"], {"姓名": "nickname"})
    with pytest.raises(LayerError, match="unknown register kind"):
        map_headers("pets", ["姓名"])


def test_sheets_in_gbk_gb18030_utf8_and_xlsx(tmp_path: Path) -> None:
    frame = pd.DataFrame({"姓名": ["张三", "𠀀丽"], "门牌": ["101", "202"]})
    text = frame.to_csv(index=False)
    for enc, rows in (("utf-8-sig", 2), ("gb18030", 2), ("gbk", 1)):
        body = frame.iloc[:rows].to_csv(index=False) if enc == "gbk" else text
        got = read_sheet(body.encode(enc), name="a.csv")
        assert got["姓名"].tolist() == frame["姓名"].tolist()[:rows]
    path = tmp_path / "a.xlsx"
    frame.to_excel(path, index=False)
    assert read_sheet(path).to_dict("records") == frame.to_dict("records")
    with pytest.raises(ReadError, match="unknown sheet format"):
        read_sheet(b"x", name="a.pdf")


def test_categories_table_loads_and_sets_visit_days(tmp_path: Path) -> None:
    path = tmp_path / "cats.csv"
    path.write_text("代码,名称,低风险走访天数,高风险走访天数\nelderly,独居老人,30,7\n", encoding="gb18030")
    cats = read_categories(path)
    assert cats[0].name == "独居老人" and visit_days(cats[0], 4) == 7 and visit_days(cats[0], 1) == 30
    path.write_text("代码,名称\nx,y\n", encoding="utf-8")
    with pytest.raises(LayerError, match="lacks columns visit_days_high, visit_days_low"):
        read_categories(path)
    assert len({c.code for c in DEFAULT_CATEGORIES}) == len(DEFAULT_CATEGORIES) >= 9


def test_synthetic_ids_are_valid_distinct_and_marked() -> None:
    ids = synthetic_ids(np.random.default_rng(5), 20_000)
    assert id_number_problems(pd.Series(ids)).isna().all()
    assert len(set(ids)) == ids.size and all(i.startswith("99") for i in ids[:100])
    sheet = synthetic_residents(pd.DataFrame({"building_id": ["a", "b"], "households": [3, 0]}), seed=2)
    assert set(sheet["楼栋编号"]) == {"a"}
    assert sheet.groupby(["单元", "门牌"]).ngroups == 3


def test_masks_of_no_numbers_are_an_empty_text_column() -> None:
    """A sheet with no rows masked nothing: the stars were an int column and the sum raised (a 500)."""
    from geo.register.idnumber import mask_id, mask_phone

    for mask in (mask_id, mask_phone):
        for dtype in (object, "str"):
            out = mask(pd.Series([], dtype=dtype))
            assert out.empty and pd.api.types.is_string_dtype(out)
    assert mask_phone(pd.Series(["13800001111", "02584001234"])).tolist() == ["138****1111", "025****1234"]
