"""Chinese labels of the audit log's action codes and detail keys, for the audit page.

Every code the app writes (``api.audit.record`` / ``record_read``) has a label here; a
test collects the codes from the source and fails on one without a label. The page shows
the label, never the raw code; the code stays in the database and the JSON API.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ACTION_LABELS", "DETAIL_LABELS", "VALUE_LABELS", "PLAN_EDIT_LABELS", "action_label", "detail_text", "action_choices"]

#: Manual plan edits (``plan.edit.<op>``, ops of :data:`api.plans.edits.OPS`).
PLAN_EDIT_LABELS: dict[str, str] = {
    "move": "移动楼栋", "split": "拆分网格", "merge": "合并网格", "lock": "锁定网格", "unlock": "解锁网格",
    "exclusive": "设为专属网格", "rename": "重命名网格",
}

ACTION_LABELS: dict[str, str] = {
    # sign-in
    "auth.login": "登录", "auth.logout": "退出登录", "auth.login_failed": "登录失败",
    "auth.login_locked": "登录被拒（账号已锁定）", "auth.login_delay": "登录被拒（尝试过于频繁）",
    "auth.login_lockout": "账号被锁定（多次密码错误）",
    # users
    "user.create": "创建用户", "user.create_demo": "创建演示用户", "user.set_password": "重置密码",
    "user.set_role": "修改角色", "user.disable": "停用用户", "user.enable": "启用用户", "user.unlock": "解锁用户",
    # workspace and plans
    "workspace.import": "导入工作区数据", "plan.partition": "自动划分网格", "plan.version": "另存为新版本",
    "plan.publish": "发布方案", "plan.rollback": "回滚方案", "plan.rebase": "方案重新关联楼栋",
    "plan.undo": "撤销方案编辑", "plan.redo": "重做方案编辑", "plan.export": "导出方案",
    **{f"plan.edit.{op}": f"方案编辑：{label}" for op, label in PLAN_EDIT_LABELS.items()},
    # register (sensitive views are audited)
    "register.import": "导入登记册", "register.export": "导出登记册（已脱敏）", "register.edit": "修改居民信息",
    "register.unmask": "查看明文身份证号/电话", "register.view_resident": "查看居民详情",
    "register.view_residents": "查看居民名单", "register.view_keyperson": "查看重点人员详情",
    "register.view_keypersons": "查看重点人员名单", "register.grant": "授予明文查看权限",
    "register.revoke": "收回明文查看权限", "register.categories": "载入重点人员类别",
    "register.staff_add": "新增网格工作人员", "register.staff_edit": "修改网格工作人员",
    "register.staff_remove": "移除网格工作人员",
    # patrol
    "patrol.import": "导入巡查轨迹", "patrol.device_bind": "绑定定位设备", "patrol.purge": "清除过期轨迹",
    "patrol.track_view": "查看巡查轨迹", "patrol.route_view": "查看建议巡查路线",
    "patrol.positions_view": "查看网格员位置", "patrol.alerts_view": "查看电子围栏告警",
    "patrol.visits_view": "查看走访清单", "patrol.visits_list": "查看走访清单（督导）",
    "patrol.visit_record": "记录重点人员走访", "patrol.visit_photo_view": "查看走访照片", "patrol.coverage_export": "导出巡查覆盖率",
    "patrol.visit_history_view": "查看走访记录",
    # incidents and boards
    "incidents.view_contact": "查看事件报告人联系方式", "incidents.apikey_create": "创建 Open311 接口密钥", "incidents.apikey_revoke": "吊销 Open311 接口密钥",
    "boards.batch": "批量打印公示牌",
}

#: Detail keys the audit rows carry, in Chinese (others are shown as they are).
DETAIL_LABELS: dict[str, str] = {
    "count": "条数", "rows": "行数", "grid": "网格", "format": "格式", "masked": "已脱敏", "reason": "理由",
    "fields": "字段", "q": "搜索", "date": "日期", "page": "页面", "hours": "小时数", "at": "时间",
    "seconds": "秒", "via": "途径", "role": "角色", "printed": "已打印", "refused": "未打印", "size": "纸张",
    "orientation": "方向", "drafts": "草稿", "scope": "范围", "target": "对象", "name": "名称",
    "kind": "类型", "inserted": "新增", "updated": "更新", "failures": "失败次数", "grids": "网格数",
    "buildings": "楼栋数", "version": "版本", "message": "说明", "layer": "图层", "headers": "表头",
    # workspace imports and plans (wangge demo, partition jobs, publishing)
    "source": "来源", "created": "已创建", "import_run_id": "导入批次", "counts": "数量", "replace": "替换原数据",
    "job": "任务", "base": "基于方案", "locked": "锁定网格", "micro": "微网格", "min_households": "最少户数",
    "max_households": "最多户数", "target_households": "目标户数", "seed": "随机种子",
    "register_households": "按登记册户数", "communities": "社区", "archived": "归档方案", "streets": "道路",
    "compounds": "小区", "service_points": "服务点", "before": "之前", "bytes": "字节数", "client": "客户端",
    "deleted": "已删除", "files": "文件", "from": "来自", "grid_code": "网格编码", "lat": "纬度", "lon": "经度",
    "locked_until": "锁定至", "op": "操作", "permission": "权限", "restored": "已恢复", "seq": "序号",
    "skipped": "已跳过", "stored": "已保存", "username": "用户名",
}

#: Code values the details carry (register sheet kinds and fields), in Chinese (others are shown as they are).
VALUE_LABELS: dict[str, str] = {
    "residents": "居民", "staff": "网格工作人员", "keypersons": "重点人员", "party": "党组织",
    "name": "姓名", "phone": "联系电话", "relation": "与户主关系", "id_number": "身份证号", "lives_here": "是否常住",
}

_VALUES: dict[Any, str] = {True: "是", False: "否"}


def action_label(code: str) -> str:
    """The Chinese label of *code*; an unknown code reads "其他操作（code）" rather than vanishing.

    Examples
    --------
    >>> action_label("plan.edit.merge")
    '方案编辑：合并网格'
    """
    return ACTION_LABELS.get(code) or f"其他操作（{code}）"


def detail_text(detail: dict[str, Any] | None) -> str:
    """An audit row's detail as Chinese ``键：值`` pairs joined by ``；``.

    Examples
    --------
    >>> detail_text({"count": 3, "masked": True})
    '条数：3；已脱敏：是'
    """
    return "；".join(f"{DETAIL_LABELS.get(key, key)}：{_shown(value)}" for key, value in (detail or {}).items())


def _shown(value: Any) -> str:
    """One detail value as the page shows it: 是/否, "无" for nothing, lists and mappings spelled out."""
    if value is None or value == [] or value == ():
        return "无"
    if isinstance(value, bool):
        return _VALUES[value]
    if isinstance(value, str):
        return VALUE_LABELS.get(value, value)
    if isinstance(value, list | tuple):
        return "、".join(_shown(v) for v in value)
    if isinstance(value, dict):
        return "，".join(f"{DETAIL_LABELS.get(k, k)} {_shown(v)}" for k, v in value.items())
    return str(value)


def action_choices() -> list[tuple[str, str]]:
    """(code or group prefix, label) for the audit page's action filter, grouped by area."""
    groups = [("auth.", "登录与退出"), ("user.", "用户管理"), ("workspace.", "工作区"), ("plan.", "网格方案"),
              ("register.", "登记册"), ("patrol.", "巡查"), ("incidents.", "事件"), ("boards.", "公示牌")]
    out: list[tuple[str, str]] = []
    for prefix, label in groups:
        out.append((prefix, f"【{label}】全部"))
        out.extend((code, f"　{name}") for code, name in ACTION_LABELS.items() if code.startswith(prefix))
    return out
