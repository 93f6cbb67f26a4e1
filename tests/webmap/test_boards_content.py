"""Pure board rules: mandatory fields and the hotline setting's format."""

from __future__ import annotations

import pytest

from webmap.boards.content import BoardContent, StaffCard, missing_fields, parse_hotlines
from webmap.boards.render import board_html


def _board(**changes: object) -> BoardContent:
    base = {"code": "320508001001001", "name": "一网格", "community": "甲社区",
            "staff": (StaffCard("grid_leader", "李四", "13700000001"), StaffCard("grid_worker", "王五", "13700000002")),
            "party_name": "第一网格党支部", "party_kind": "网格党支部", "party_secretary": "陈书记",
            "supervision_hotline": "12345"}
    return BoardContent(**{**base, **changes})  # type: ignore[arg-type]


def test_a_complete_board_lacks_nothing() -> None:
    assert missing_fields(_board()) == []


@pytest.mark.parametrize(("changes", "expected"), [
    ({"staff": (StaffCard("grid_worker", "王五", "137"),)}, "缺少网格长"),
    ({"staff": (StaffCard("grid_leader", "李四", "137"),)}, "缺少网格员"),
    ({"staff": (StaffCard("grid_leader", "李四", " "), StaffCard("grid_worker", "王五", "1"))}, "网格长李四缺少联系电话"),
    ({"party_name": ""}, "缺少网格党支部或党小组"),
    ({"party_secretary": ""}, "党组织第一网格党支部缺少书记"),
    ({"supervision_hotline": ""}, "缺少监督电话"),
])
def test_each_missing_field_is_named_with_its_fix(changes: dict[str, object], expected: str) -> None:
    found = missing_fields(_board(**changes))
    assert len(found) == 1 and found[0].startswith(expected) and "：" in found[0]


def test_photos_are_required_only_when_configured() -> None:
    assert missing_fields(_board()) == []
    assert [m[:9] for m in missing_fields(_board(), require_photo=True)] == ["网格长李四缺少照片", "网格员王五缺少照片"]


def test_hotlines_parse_both_comma_kinds() -> None:
    assert parse_hotlines("110 报警，119 火警, 12345 政务服务便民热线, ") == (
        ("110", "报警"), ("119", "火警"), ("12345", "政务服务便民热线"))


def test_board_html_escapes_values_and_rejects_unknown_sizes() -> None:
    html = board_html(_board(name="<img src=x onerror=alert(1)>"), size="A4", orientation="landscape")
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "size: A4 landscape" in html and '"Noto Sans CJK SC"' in html
    with pytest.raises(ValueError, match="board size 'B5' is not supported; use one of A3, A4"):
        board_html(_board(), size="B5")
    with pytest.raises(ValueError, match="orientation 'up' is not supported"):
        board_html(_board(), orientation="up")
