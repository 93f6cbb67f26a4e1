"""Notice boards of the active grids: content, completeness, single boards and batches.

A board whose mandatory fields are missing (no 网格长, no phone, no party cell, …) is
refused with the list of what is missing, unless the admin asks for a draft, which prints
``待补充`` where the field is missing.
"""

from __future__ import annotations

import hashlib
import logging
import mimetypes
import shutil
import zipfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

import geopandas as gpd

from api.boards.pool import map_chunks
from api.boards.sources import BoardSources
from webmap.boards.content import BoardContent, StaffCard, missing_fields, parse_hotlines
from webmap.boards.mapimage import board_map_png
from webmap.boards.qr import data_uri, qr_png
from webmap.boards.render import board_html, join_pdfs, pdf_bytes, pdf_documents, png_from_pdf

__all__ = ["BoardIncomplete", "BatchResult", "public_url", "board_content", "board_problems", "missing_by_grid",
           "render_board", "print_batch", "grid_map_png", "content_hash"]

log = logging.getLogger(__name__)

#: Map picture size (inches) per orientation: portrait boards print it full width.
_MAP_INCHES = {"portrait": (7.5, 3.9), "landscape": (7.0, 6.2)}
_PARTY_KINDS = {"branch": "网格党支部", "group": "党小组"}


class BoardIncomplete(ValueError):
    """A board lacks mandatory fields; ``missing`` lists them (Chinese, each naming the fix)."""

    def __init__(self, key: str, missing: list[str]) -> None:
        super().__init__(f"网格 {key} 的公示牌缺少必填内容：" + "；".join(missing))
        self.key = key
        self.missing = missing


def public_url(settings: Mapping[str, Any], code: str) -> str:
    """URL of the grid's public page, the QR code's target (valid while the code survives re-plans)."""
    return f"{str(settings['board_public_base_url']).rstrip('/')}/g/{quote(code, safe='')}"


def _image_uri(path: Path) -> str | None:
    """A PNG or JPEG file as a data URI (``None`` when missing or of another type)."""
    mime = mimetypes.guess_type(path.name)[0]
    if not path.is_file() or mime not in ("image/png", "image/jpeg"):
        return None
    return data_uri(path.read_bytes(), mime)


def _photo_uri(photo: Any, photo_dir: Path) -> str | None:
    """The staff photo as a data URI; only a file name inside *photo_dir* is read (no paths)."""
    if not isinstance(photo, str) or not photo.strip():
        return None
    return _image_uri(photo_dir / Path(photo.strip()).name)


def _logo_uri(settings: Mapping[str, Any]) -> str:
    """The configured board logo (setting ``board_logo_file``, chosen by the admin) as a data URI."""
    configured = str(settings.get("board_logo_file") or "").strip()
    return (_image_uri(Path(configured)) or "") if configured else ""


def _text(value: Any) -> str:
    return "" if value is None or (isinstance(value, float) and value != value) else str(value).strip()


def _staff_cards(src: BoardSources, key: str, photo_dir: Path) -> tuple[StaffCard, ...]:
    return _cards(src.staff[src.staff["grid_code"] == key].itertuples(), photo_dir)


def _cards(rows: Iterable[Any], photo_dir: Path) -> tuple[StaffCard, ...]:
    """Staff cards of *rows* (objects with role, name, phone, duties, photo), in their order."""
    return tuple(StaffCard(role=r.role, name=_text(r.name), phone=_text(r.phone), duties=_text(r.duties),
                           photo_uri=_photo_uri(r.photo, photo_dir)) for r in rows)


def _layers_of(src: BoardSources, grid: gpd.GeoDataFrame, key: str) -> dict[str, gpd.GeoDataFrame]:
    ids = set(src.grid_of_building.index[src.grid_of_building == key])
    minx, miny, maxx, maxy = grid.total_bounds
    pad = max(maxx - minx, maxy - miny) * 0.15 + 0.0003
    near = (minx - pad, miny - pad, maxx + pad, maxy + pad)
    buildings = src.buildings[src.buildings["building_id"].isin(ids)]
    return {"buildings": buildings, "streets": src.streets.cx[near[0]:near[2], near[1]:near[3]],
            "services": src.service_points[src.service_points.within(grid.geometry.iloc[0].buffer(pad / 3))],
            "party": gpd.GeoDataFrame(geometry=buildings[buildings["building_id"].isin(src.party_centre_buildings)]
                                      .representative_point(), crs=4326)}


def _party_fields(src: BoardSources, key: str) -> dict[str, str]:
    """The board's party branch/group fields of grid *key* (its 网格党支部 first)."""
    party = src.party[src.party["grid_code"] == key]
    return _party_of(party.iloc[0] if len(party) else None)


def _party_of(org: Any) -> dict[str, str]:
    """Board fields of party organisation *org* (a row with kind, name, secretary, …; ``None``: none)."""
    return {"party_name": _text(org["name"]) if org is not None else "",
            "party_kind": _PARTY_KINDS.get(org["kind"], "") if org is not None else "网格党支部",
            "party_secretary": _text(org["secretary"]) if org is not None else "",
            "party_secretary_phone": _text(org["secretary_phone"]) if org is not None else ""}


def board_content(src: BoardSources, key: str, *, settings: Mapping[str, Any], photo_dir: Path,
                  orientation: str = "portrait", pictures: bool = True) -> BoardContent:
    """The board of active grid *key* (its map drawn for *orientation*; no map nor QR unless *pictures*)."""
    hit = src.grids[src.grids["key"] == key]
    if hit.empty:
        raise LookupError(f"没有编码为 {key} 的生效网格：先发布网格方案，或检查网格编码")
    row, grid = hit.iloc[0], hit[["geometry"]]
    layers = _layers_of(src, grid, key)
    register = int(src.households_register.reindex(layers["buildings"]["building_id"]).fillna(0).sum())
    url = public_url(settings, str(row["key"]))
    map_uri = qr_uri = ""
    if pictures:
        w, h = _MAP_INCHES[orientation]
        map_uri = data_uri(board_map_png(grid, layers["buildings"], layers["streets"], layers["services"],
                                         layers["party"], width_in=w, height_in=h, dpi=int(settings["board_map_dpi"]),
                                         kind="jpeg"), "image/jpeg")
        qr_uri = data_uri(qr_png(url))
    return BoardContent(
        code=str(row["key"]), name=_text(row["name"]) or f"网格 {row['key']}",
        community=src.communities.get(str(row["community_id"]), _text(row["community_id"])),
        staff=_staff_cards(src, key, photo_dir), **_party_fields(src, key),
        households=int(row["households"]), households_register=register,
        buildings=len(layers["buildings"]), supervision_hotline=_text(settings["board_supervision_hotline"]),
        hotlines=parse_hotlines(str(settings["board_convenience_hotlines"])), public_url=url,
        header_text=_text(settings["board_header_text"]), logo_uri=_logo_uri(settings) if pictures else "",
        map_uri=map_uri, qr_uri=qr_uri,
        service_points=tuple(sorted({_text(n) for n in layers["services"]["name"] if _text(n)}))[:12],
        plan_id=int(row["plan_version_id"]))


def board_problems(board: BoardContent, settings: Mapping[str, Any]) -> list[str]:
    """Mandatory fields *board* lacks under the settings (empty list: printable)."""
    return missing_fields(board, require_photo=bool(settings["board_require_photo"]))


def missing_by_grid(src: BoardSources, *, settings: Mapping[str, Any], photo_dir: Path) -> dict[str, list[str]]:
    """What the board of every grid of *src* lacks, from staff, party and settings only (no map, no pictures).

    Same answer as ``board_problems(board_content(...))`` per grid at a fraction of the cost
    (staff and party grouped once): the mandatory fields never depend on the map, so the
    board list checks every grid this way.
    """
    staff: dict[str, list[Any]] = defaultdict(list)
    for row in src.staff.itertuples(index=False):  # one pass, in the sources' order (leader first)
        staff[row.grid_code].append(row)
    first_org = src.party.drop_duplicates("grid_code")  # a grid's 网格党支部 comes first
    party = {r["grid_code"]: r for r in first_org.to_dict("records")}
    hotline = _text(settings["board_supervision_hotline"])
    out = {}
    for key in src.grids["key"].astype(str):
        board = BoardContent(code=key, name="", community="", staff=_cards(staff.get(key, []), photo_dir),
                             supervision_hotline=hotline, **_party_of(party.get(key)))
        out[key] = board_problems(board, settings)
    return out


def render_board(board: BoardContent, *, settings: Mapping[str, Any], size: str = "A3",
                 orientation: str = "portrait", fmt: str = "pdf", drafts: bool = False) -> bytes:
    """PDF or PNG of one board; raises :class:`BoardIncomplete` when fields are missing and not *drafts*."""
    missing = board_problems(board, settings)
    if missing and not drafts:
        raise BoardIncomplete(board.code, missing)
    pdf = pdf_documents([board_html(board, size=size, orientation=orientation, draft=drafts, missing=missing)])[0]
    data = pdf.write_pdf()
    return png_from_pdf(data, dpi=int(settings["board_png_dpi"])) if fmt == "png" else data


def content_hash(board: BoardContent) -> str:
    """SHA-256 of what the board shows (pictures aside): changes with staff, party, counts or plan."""
    return hashlib.sha256(repr(replace(board, map_uri="", qr_uri="", logo_uri="")).encode("utf-8")).hexdigest()


@dataclass
class BatchResult:
    """Files written by a batch, the grids refused with what they lack, and what was printed."""

    printed: list[str] = field(default_factory=list)
    versions: dict[str, tuple[int | None, str]] = field(default_factory=dict)
    refused: dict[str, list[str]] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)


def _write_board(pdf: bytes, stem: Path, fmt: str, *, dpi: int, scratch: Path) -> tuple[list[Path], Path]:
    """Write ``<stem>.pdf`` and/or ``<stem>.png`` (*fmt*: pdf, png or both).

    Returns the files written and the board's PDF, which is put in *scratch* when only the
    PNG was asked for (the merged PDF is made from it).
    """
    out = []
    pdf_path = stem.with_name(stem.name + ".pdf") if fmt in ("pdf", "both") else scratch / (stem.name + ".pdf")
    pdf_path.parent.mkdir(parents=True, exist_ok=True)
    pdf_path.write_bytes(pdf)
    if fmt in ("pdf", "both"):
        out.append(pdf_path)
    if fmt in ("png", "both"):
        out.append(stem.with_name(stem.name + ".png"))
        out[-1].write_bytes(png_from_pdf(pdf, dpi=dpi))
    return out, pdf_path


#: Folder (inside a batch's output folder) of the PDFs of a PNG-only batch, until they are merged.
_SCRATCH = ".pdf"


@dataclass(frozen=True)
class _PrintJob:
    """What every chunk of a batch is printed with (sent once to each worker process)."""

    src: BoardSources
    out_dir: Path
    settings: dict[str, Any]
    photo_dir: Path
    size: str
    orientation: str
    fmt: str
    drafts: bool


def _print_chunk(job: _PrintJob, index: int, keys: list[str],
                 tick: Callable[[], None] | None) -> tuple[BatchResult, list[Path]]:
    """Boards of *keys* written to the job's folder; the result and each printed board's PDF, in order."""
    result, pdfs = BatchResult(), []
    for key in keys:
        # Completeness first, without pictures: a refused board costs no map drawing.
        board = board_content(job.src, key, settings=job.settings, photo_dir=job.photo_dir, pictures=False)
        missing = board_problems(board, job.settings)
        if missing and not job.drafts:
            result.refused[key] = missing
        else:
            board = board_content(job.src, key, settings=job.settings, photo_dir=job.photo_dir,
                                  orientation=job.orientation)
            html = board_html(board, size=job.size, orientation=job.orientation, draft=job.drafts, missing=missing)
            files, pdf = _write_board(pdf_bytes(html), job.out_dir / quote(key, safe=""), job.fmt,
                                      dpi=int(job.settings["board_png_dpi"]), scratch=job.out_dir / _SCRATCH)
            result.files += files
            pdfs.append(pdf)
            result.printed.append(key)
            if not missing:  # drafts are not versions to keep on the wall
                result.versions[key] = (board.plan_id, content_hash(board))
        if tick:
            tick()
    return result, pdfs


def print_batch(src: BoardSources, keys: list[str], out_dir: Path, *, settings: Mapping[str, Any], photo_dir: Path,
                size: str = "A3", orientation: str = "portrait", fmt: str = "pdf", drafts: bool = False,
                bundle: bool | None = None, progress: Callable[[int, int], None] | None = None) -> BatchResult:
    """Boards of *keys* as ``<code>.pdf|png`` (*fmt* pdf, png or both) in *out_dir*, plus ``boards.zip`` and a merged ``boards-all.pdf``.

    Grids with missing fields are listed in the result and not printed (unless *drafts*).
    The ZIP and the merged PDF are written when *bundle* (default: when several grids are asked for).
    Chunks of ``board_batch_chunk`` grids are printed by ``board_workers`` processes;
    *progress* is called with (boards done, boards in all).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    job = _PrintJob(src=src, out_dir=out_dir, settings=dict(settings), photo_dir=photo_dir, size=size,
                    orientation=orientation, fmt=fmt, drafts=drafts)
    step = max(1, int(settings["board_batch_chunk"]))
    chunks = [keys[i:i + step] for i in range(0, len(keys), step)]
    parts = map_chunks(_print_chunk, job, chunks, workers=int(settings["board_workers"]),
                       progress=(lambda done: progress(done, len(keys))) if progress else None)
    result, pdfs = BatchResult(), []
    for part, part_pdfs in parts:
        result.printed += part.printed
        result.versions.update(part.versions)
        result.refused.update(part.refused)
        result.files += part.files
        pdfs += part_pdfs
    if pdfs and (len(result.printed) > 1 if bundle is None else bundle):
        merged = out_dir / "boards-all.pdf"
        join_pdfs(pdfs, merged)
        archive = out_dir / "boards.zip"
        # PDFs and PNGs are compressed already: the fastest level keeps most of the gain.
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
            for path in list(result.files):
                z.write(path, path.name)
        result.files += [merged, archive]
    shutil.rmtree(out_dir / _SCRATCH, ignore_errors=True)
    log.info("boards: %d printed, %d refused (missing fields) of %d grids", len(result.printed), len(result.refused),
             len(keys))
    return result


def grid_map_png(src: BoardSources, key: str, *, dpi: int = 110) -> bytes:
    """The boundary map of grid *key* for the public page, phone-screen sized, without households."""
    hit = src.grids[src.grids["key"] == key]
    if hit.empty:
        raise LookupError(f"没有编码为 {key} 的生效网格")
    grid = hit[["geometry"]]
    layers = _layers_of(src, grid, key)
    # Public: no party-member households (they are register data), only the printed board shows them.
    return board_map_png(grid, layers["buildings"], layers["streets"], layers["services"], layers["party"].iloc[0:0],
                         width_in=6.0, height_in=5.0, dpi=dpi)
