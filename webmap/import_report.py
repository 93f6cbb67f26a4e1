"""The import validation report in Chinese, one row per problem (layer, feature, problem, fix).

:mod:`geo.validate` words its issues for the command line; the import page shows each
issue's stable ``code`` as a Chinese problem and a fix that names the page's form
fields, with the original detail kept beside it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from geo.layers import SCHEMAS

__all__ = ["ISSUE_TEXT_ZH", "SEVERITY_ZH", "issue_rows", "error_row"]

_MAP = "在“列映射”中把文件的列映射为"
#: Issue code -> (problem, fix) in Chinese; the fix names the import page's fields.
ISSUE_TEXT_ZH: dict[str, tuple[str, str]] = {
    "missing_crs": ("文件没有坐标系", "在“坐标系（文件无坐标系时）”填写，如 EPSG:4326；Shapefile 压缩包须含 .prj"),
    "absurd_coordinates": ("坐标超出合理范围（坐标系可能填错）", "在“坐标系”填写数据真实的坐标系，或修正异常的点"),
    "outside_china": ("要素位于中国境外", "检查坐标系和经纬度顺序；境外数据可忽略"),
    "empty_layer": ("图层没有要素", "检查所选文件和“图层”"),
    "empty_geometry": ("要素没有几何图形", "补画轮廓或删除该要素"),
    "wrong_geometry_type": ("几何类型不符合该图层", "把文件放到正确的图层（如点放“服务点”），或在 GIS 中转换"),
    "invalid_geometry": ("几何图形无效", "在 GIS 中修复几何（QGIS“修复几何”）或重画轮廓"),
    "multipart_exploded": ("多部件要素已拆分", "已自动拆分，编号加后缀 -1、-2"),
    "z_dropped": ("三维坐标的高程（Z 值）已去掉", "无需处理；楼栋高度请填在层数或高度列"),
    "missing_required_column": ("缺少必需的编号列", f"{_MAP}编号列（如 building_id）"),
    "missing_id": ("要素没有编号", "给每个要素填写唯一编号，或映射另一列为编号"),
    "duplicate_id": ("编号重复", "让编号唯一，或在“列映射”中换一列作为编号"),
    "non_integer_households": ("户数不是整数", "填写整数户数，或留空由系统估算"),
    "negative_households": ("户数为负数", "填写 0 或正整数，或留空由系统估算"),
    "non_integer_floors": ("层数不是整数", "填写整数层数，或留空"),
    "zero_floors": ("层数为 0", "填写实际层数，或留空"),
    "absurd_floors": ("层数不合理", "检查层数列是否映射正确"),
    "absurd_height": ("高度不合理", "检查高度列的单位（米）和映射"),
    "unknown_building_use": ("楼栋用途无法识别", "使用标准用途（如 residential）；未识别的按住宅以外处理"),
    "unknown_road_class": ("道路等级无法识别", f"{_MAP} road_class，或使用标准等级（major、minor、lane…）"),
    "missing_layer": ("缺少必需的图层", "上传楼栋文件（必填）"),
    "columns_recognised": ("已自动识别列（编号、户数等常用列名）", "识别有误时，在“列映射”中为原列选择正确的标准列"),
    "households_too_many": ("户数过大，不像一栋楼的户数", "检查户数列是否映射错（单位或列混淆）；确有其事请管理员调高 max_households_per_building"),
    "id_too_long": ("编号过长", "把编号缩短到 max_id_length 个字符以内，或在“列映射”中换一列作为编号"),
    "id_control_character": ("编号含换行、制表符等控制字符", "删除编号中的控制字符后重新上传"),
    "approximate_community": ("未提供社区边界，已生成近似社区", "上传社区边界文件以得到真实社区"),
    "buildings_outside_communities": ("楼栋不在任何社区内", "检查社区边界是否完整、坐标系是否一致"),
    "buildings_in_several_communities": ("楼栋跨多个社区", "修正社区边界，使每栋楼只属于一个社区"),
    "overlapping_communities": ("社区边界相互重叠", "修正社区边界，去掉重叠部分"),
    "compound_crosses_communities": ("小区跨越社区边界", "核对小区与社区边界"),
}

SEVERITY_ZH: dict[str, str] = {"error": "错误（阻止导入）", "repaired": "已自动修复", "warning": "提示"}


def _layer_label(layer: str | None) -> str:
    schema = SCHEMAS.get(layer or "")
    return f"{schema.label_zh}（{layer}）" if schema is not None else (layer or "—")


def issue_rows(issues: Iterable[Any]) -> list[dict[str, Any]]:
    """One dict per issue: ``layer``, ``feature_id``, ``problem``, ``detail``, ``fix``, ``severity``.

    Parameters
    ----------
    issues
        :class:`geo.issues.Issue` objects (any object with ``layer``, ``feature_id``,
        ``code``, ``problem``, ``fix``, ``severity``).
    """
    rows = []
    for issue in issues:
        problem, fix = ISSUE_TEXT_ZH.get(issue.code, (issue.problem, issue.fix))
        rows.append({"layer": _layer_label(issue.layer), "feature_id": issue.feature_id or "（整个图层）",
                     "code": issue.code, "problem": problem, "detail": f"{issue.problem}: {issue.fix}",
                     "fix": fix, "severity": SEVERITY_ZH.get(issue.severity, issue.severity)})
    return rows


def error_row(layer: str | None, message: str, fix: str) -> dict[str, Any]:
    """A report row for a whole-file error (unreadable file, no CRS, ...)."""
    return {"layer": _layer_label(layer), "feature_id": "（整个文件）", "code": "read_error",
            "problem": message, "detail": "", "fix": fix, "severity": SEVERITY_ZH["error"]}
