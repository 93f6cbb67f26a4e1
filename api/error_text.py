"""The Chinese wording of ``geo`` errors for web users: what went wrong and how to fix it on a page.

``geo`` words its errors for the command line (English, naming ``--layer``, ``--field``,
``--crs``, ``--encoding``); the CLI prints them as they are. A web user sees instead the
entry of :data:`GEO_ERROR_TEXT` for the error's catalogue ``code`` (read errors carry one,
docs/VALIDATION.md), else for its class: a Chinese message and a fix naming the page's form
fields, the HTTP status and the form field at fault. The English text stays in the log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from geo.errors import WanggeError

__all__ = ["GEO_ERROR_TEXT", "ErrorText", "error_code", "geo_error_text", "web_wording"]


@dataclass(frozen=True)
class ErrorText:
    """A geo error in web terms: HTTP *status*, Chinese *message* and *fix*, form *field* (or None).

    *message* None means the geo text is Chinese already and written for the user (the
    incident state machine's refusals); it is shown as is. ``{name}`` fields in *message*
    and *fix* are filled from the error's ``params`` (the values its English text names).
    """

    status: int
    message: str | None
    fix: str
    field: str | None = None


_CRS_FIX = "在“坐标系（文件无坐标系时）”填写数据真实的坐标系，如 EPSG:4326 或 EPSG:4547"
_REEXPORT = "在 GIS 软件中重新导出该图层后再上传"

#: Error code (a read error's catalogue ``code``, else the snake-case class name) -> web wording.
GEO_ERROR_TEXT: dict[str, ErrorText] = {
    # read errors by catalogue code (docs/VALIDATION.md, "Reading files")
    "empty_file": ErrorText(400, "文件是空的（0 字节），或 GeoPackage 中没有图层", _REEXPORT, "file"),
    "not_a_file": ErrorText(400, "上传的不是普通数据文件", "选择保存在磁盘上的数据文件后重新上传", "file"),
    "not_utf8": ErrorText(400, "文件的文字编码无法识别（既不是 UTF-8，也不是 GBK/GB18030）",
                          "把文件另存为 UTF-8 编码后重新上传", "file"),
    "undecodable_geometry": ErrorText(400, "有要素的几何图形无法构建（多边形的环少于 4 个点或首尾不闭合）",
                                      "在 QGIS 中检查有效性（矢量 > 几何工具 > 检查有效性），修复或删除该要素", "file"),
    "nul_character": ErrorText(400, "文件的文字中含有空字符（\\u0000），读取时会被截断",
                               "删除文件中的空字符后重新导出并上传", "file"),
    "ambiguous_layer": ErrorText(400, "文件有多个图层，没有一个以该数据类型命名", "在“文件内图层”中选择要导入的图层",
                                 "layers"),
    # register sheets (geo.register): the page names the form's "字段对应" box, not --field
    "bad_field_option": ErrorText(400, "字段对应 {option!r} 的写法不对", "每行写一个“表头=字段”，如 户主姓名=name", "fields"),
    "unknown_register_kind": ErrorText(400, "未知的导入类型 {kind}", "请选择：{choices}", "kind"),
    "unknown_field_target": ErrorText(400, "字段对应的目标 {targets} 不是登记表的字段", "可选：{choices}", "fields"),
    "missing_columns": ErrorText(400, "表格缺少必需的列：{columns}", "修改表头，或在“字段对应”中写“表头=字段”", "file"),
    "unknown_sheet_format": ErrorText(400, "不支持的表格格式 {suffix}", "请上传 .xlsx 或 .csv 文件", "file"),
    "no_data_rows": ErrorText(400, "表格只有表头，没有数据行（空行已跳过）", "在表头下方填写至少一行数据后重新导入",
                              "file"),
    "unreadable_sheet": ErrorText(400, "表格无法读取", "确认文件能在 Excel 中打开，另存后重新上传", "file"),
    "missing_crs": ErrorText(422, "文件没有坐标系（Shapefile 缺少 .prj，或文件中没有坐标系信息）", _CRS_FIX, "crs"),
    "unknown_crs": ErrorText(422, "所填的坐标系无法识别", "填写 EPSG 编号，如 EPSG:4326（经纬度）或 EPSG:4547（CGCS2000 3 度带）",
                             "crs"),
    "absurd_coordinates": ErrorText(422, "坐标与所标注的坐标系不符（例如经纬度被标为投影坐标系）", _CRS_FIX, "crs"),
    # by class
    "read_error": ErrorText(400, "文件无法读取（格式、压缩包内容或大小不符合要求）",
                            "检查文件格式（GeoPackage、GeoJSON、Shapefile 压缩包、CSV）和所选“文件内图层”后重新上传",
                            "file"),
    "crs_error": ErrorText(422, "图层的坐标系缺失、未知或不能用于按米计算", _CRS_FIX, "crs"),
    "layer_error": ErrorText(422, "图层的数据不能按要求使用（字段、几何类型或取值有误）",
                             "在“列映射”中检查字段对应关系，修正数据后重新导入", "fields"),
    "validation_failed": ErrorText(422, "数据校验发现阻断问题，未写入任何数据", "按问题清单逐条修正数据后重新导入"),
    "infeasible_plan": ErrorText(409, "在当前户数上下限下无法划分网格", "放宽户数下限或上限，或检查所选社区的楼栋户数"),
    "basemap_error": ErrorText(503, "底图无法按当前设置显示", "请管理员检查设置 basemap、tianditu_tk 或 osm_tile_url"),
    "unknown_basemap": ErrorText(503, "设置的底图 {basemap} 不存在", "请管理员把设置 basemap 改为 {choices} 之一"),
    "tianditu_key_missing": ErrorText(503, "天地图底图需要密钥，尚未设置",
                                      "请管理员填写设置 tianditu_tk（环境变量 WANGGE_TIANDITU_TK），或把 basemap 设为 none"),
    "osm_url_missing": ErrorText(503, "OSM 底图需要瓦片地址，尚未设置", "请管理员填写设置 osm_tile_url"),
    "transition_refused": ErrorText(409, None, "按提示完成所需步骤后重试"),
    "suggest_error": ErrorText(400, "无法按所给条件建议新址", "调整建议新址数或设施类别后重试", "suggest"),
}
_FALLBACK = ErrorText(400, "数据有问题，无法完成本次操作", "检查所填内容和数据后重试")


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def error_code(exc: BaseException) -> str:
    """The catalogue ``code`` of *exc* when it has one (a string), else its class name in snake case."""
    code = getattr(exc, "code", None)
    return code if isinstance(code, str) and code else _snake(type(exc).__name__)


def geo_error_text(exc: WanggeError) -> tuple[str, ErrorText]:
    """``(code, wording)`` for *exc*: its code's entry, else its nearest class's, else a generic one.

    Parameters
    ----------
    exc
        Any :class:`geo.errors.WanggeError` (or subclass defined in ``webmap``/``api``).

    Examples
    --------
    >>> from geo.errors import CRSError
    >>> geo_error_text(CRSError("b.gpkg has no CRS; pass it with --crs EPSG:4326"))[1].field
    'crs'
    """
    code = error_code(exc)
    entry = GEO_ERROR_TEXT.get(code) or next(
        (GEO_ERROR_TEXT[name] for name in (_snake(c.__name__) for c in type(exc).__mro__) if name in GEO_ERROR_TEXT),
        _FALLBACK)
    return code, _filled(entry, getattr(exc, "params", None) or {})


class _Values(dict[str, str]):
    """The error's params; a value the wording names but the error lacks reads as an ellipsis."""

    def __missing__(self, key: str) -> str:
        return "…"


def _filled(entry: ErrorText, params: dict[str, str]) -> ErrorText:
    values = _Values(params)
    message = None if entry.message is None else entry.message.format_map(values)
    return replace(entry, message=message, fix=entry.fix.format_map(values))


def web_wording(exc: WanggeError) -> str:
    """One Chinese sentence for a notice on a page: the error's message, then its fix."""
    _code, text = geo_error_text(exc)
    return f"{text.message or exc}；{text.fix}"
