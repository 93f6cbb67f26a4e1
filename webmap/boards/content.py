"""What a grid notice board shows, and which mandatory fields are missing (DOMAIN §7).

The service (:mod:`api.boards`) fills a :class:`BoardContent` from the active grids and the
register; this module only says what is missing, so a board is never printed blank.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["BOARD_ROLES", "StaffCard", "BoardContent", "missing_fields", "parse_hotlines"]

#: Staff roles shown on a board, in order, with their Chinese titles.
BOARD_ROLES: dict[str, str] = {"grid_leader": "网格长", "grid_worker": "网格员", "instructor": "网格指导员"}


@dataclass(frozen=True)
class StaffCard:
    """One person on the board: role, name, phone (public on boards), duties, photo."""

    role: str
    name: str
    phone: str
    duties: str = ""
    photo_uri: str | None = None

    @property
    def role_label(self) -> str:
        return BOARD_ROLES.get(self.role, self.role)


@dataclass(frozen=True)
class BoardContent:
    """Everything printed on one grid's notice board (staff information only, never residents)."""

    code: str
    name: str
    community: str
    staff: tuple[StaffCard, ...]
    party_name: str = ""
    party_kind: str = ""
    party_secretary: str = ""
    party_secretary_phone: str = ""
    households: int = 0
    households_register: int = 0
    buildings: int = 0
    supervision_hotline: str = ""
    hotlines: tuple[tuple[str, str], ...] = ()
    public_url: str = ""
    header_text: str = ""
    logo_uri: str = ""
    map_uri: str = ""
    qr_uri: str = ""
    service_points: tuple[str, ...] = field(default_factory=tuple)
    plan_id: int | None = None


def missing_fields(board: BoardContent, *, require_photo: bool = False) -> list[str]:
    """Mandatory fields the board lacks, in Chinese, each naming what to add (empty = printable).

    Examples
    --------
    >>> missing_fields(BoardContent(code="1", name="一网格", community="c", staff=()))[:1]
    ['缺少网格长：在登记册导入“网格工作人员”表，角色填“网格长”']
    """
    out: list[str] = []
    if not any(s.role == "grid_leader" for s in board.staff):
        out.append("缺少网格长：在登记册导入“网格工作人员”表，角色填“网格长”")
    if not any(s.role == "grid_worker" for s in board.staff):
        out.append("缺少网格员：在登记册导入“网格工作人员”表，角色填“网格员”")
    for s in board.staff:
        if not s.phone.strip():
            out.append(f"{s.role_label}{s.name}缺少联系电话：在登记册补充联系电话")
        if require_photo and not s.photo_uri:
            out.append(f"{s.role_label}{s.name}缺少照片：在登记册“照片”列填写照片文件名")
    if not board.party_name:
        out.append("缺少网格党支部或党小组：在登记册导入“党组织”表并填写网格编码")
    elif not board.party_secretary:
        out.append(f"党组织{board.party_name}缺少书记（组长）：在“党组织”表填写书记")
    if not board.supervision_hotline.strip():
        out.append("缺少监督电话：设置 board_supervision_hotline")
    return out


def parse_hotlines(text: str) -> tuple[tuple[str, str], ...]:
    """``"110 报警, 119 火警"`` -> ``(("110", "报警"), ("119", "火警"))`` (the setting's format).

    Examples
    --------
    >>> parse_hotlines("110 报警，12345 政务服务便民热线")
    (('110', '报警'), ('12345', '政务服务便民热线'))
    """
    items = [i.strip() for i in text.replace("，", ",").split(",") if i.strip()]
    return tuple((number, label.strip()) for number, _, label in (i.partition(" ") for i in items))
