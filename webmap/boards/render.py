"""Board HTML (Jinja, autoescaped), PDF (WeasyPrint, embedded CJK font) and PNG (pdftoppm)."""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from PIL import Image

from webmap import TEMPLATE_DIR
from webmap.boards.content import BoardContent, StaffCard
from webmap.boards.mapimage import CJK_FAMILIES
from webmap.boards.qr import data_uri

__all__ = ["SIZES", "ORIENTATIONS", "SILHOUETTE", "board_html", "pdf_documents", "pdf_bytes", "join_pdfs", "png_from_pdf"]

#: Paper sizes (mm, portrait) and the base font size (pt) that fills them.
SIZES: dict[str, tuple[int, int, float]] = {"A3": (297, 420, 13.0), "A4": (210, 297, 9.5)}
ORIENTATIONS: tuple[str, ...] = ("portrait", "landscape")

#: Placeholder photo (a grey silhouette) for staff without one.
SILHOUETTE = data_uri(
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 60 78"><rect width="60" height="78" fill="#e5e7ea"/>'
    b'<circle cx="30" cy="27" r="13" fill="#9aa1a9"/><path d="M6 78c2-20 12-30 24-30s22 10 24 30z" fill="#9aa1a9"/>'
    b'</svg>', "image/svg+xml")


@lru_cache(maxsize=1)
def _env() -> Environment:
    return Environment(loader=FileSystemLoader(str(TEMPLATE_DIR)), autoescape=select_autoescape(default=True))


def _with_placeholders(board: BoardContent) -> BoardContent:
    """A draft shows an empty card (待补充) for each board role nobody holds."""
    held = {s.role for s in board.staff}
    empty = tuple(StaffCard(role, "", "") for role in ("grid_leader", "grid_worker") if role not in held)
    return replace(board, staff=empty + board.staff) if empty else board


def board_html(board: BoardContent, *, size: str = "A3", orientation: str = "portrait", draft: bool = False,
               missing: list[str] | None = None) -> str:
    """The board as one HTML page for print (every value escaped; pictures embedded as data URIs).

    Parameters
    ----------
    size, orientation
        ``A3``/``A4`` and ``portrait``/``landscape``.
    draft, missing
        A draft prints ``待补充`` where a mandatory field is missing and lists *missing*.
    """
    if size not in SIZES:
        raise ValueError(f"board size {size!r} is not supported; use one of {', '.join(SIZES)}")
    if orientation not in ORIENTATIONS:
        raise ValueError(f"board orientation {orientation!r} is not supported; use portrait or landscape")
    width, height, font_pt = SIZES[size]
    if draft:
        board = _with_placeholders(board)
    fonts = ", ".join(f'"{f}"' for f in CJK_FAMILIES) + ", sans-serif"
    return _env().get_template("boards/board.html").render(
        b=board, size=size, orientation=orientation, font_pt=font_pt, fonts=fonts, draft=draft,
        missing=missing or [], silhouette=SILHOUETTE, landscape=orientation == "landscape",
        page_w=height if orientation == "landscape" else width)


def pdf_documents(htmls: list[str]) -> list:  # list[weasyprint.Document]
    """Laid-out WeasyPrint documents of *htmls* (fonts resolved through fontconfig, embedded)."""
    from weasyprint import HTML

    return [HTML(string=h, base_url=str(TEMPLATE_DIR)).render() for h in htmls]


def pdf_bytes(html: str) -> bytes:
    """One board's PDF."""
    return pdf_documents([html])[0].write_pdf()


def join_pdfs(paths: list[Path], target: Path) -> None:
    """Write the pages of the PDF files *paths*, in order, as one PDF *target* (poppler's ``pdfunite``).

    The files are joined as they are, nothing is laid out again: each board keeps its own
    font subset (a merged board costs about what its own PDF weighs).
    """
    if not paths:
        raise ValueError("join_pdfs: no boards to merge; select at least one printable grid")
    if len(paths) == 1:
        shutil.copyfile(paths[0], target)
        return
    try:
        subprocess.run(["pdfunite", *map(str, paths), str(target)], check=True, capture_output=True, timeout=600)
    except FileNotFoundError as exc:
        raise RuntimeError("pdfunite is missing; install it: apt-get install -y poppler-utils") from exc


def png_from_pdf(pdf: bytes, *, dpi: int = 100) -> bytes:
    """PNG of the first page of *pdf* (poppler's ``pdftoppm``; Debian ``poppler-utils``).

    pdftoppm writes the raw picture (PPM) and Pillow compresses it: pdftoppm's own PNG
    writer took two thirds of the time of a board's PNG.
    """
    with tempfile.TemporaryDirectory(prefix="wangge-board-") as tmp:
        src = Path(tmp) / "board.pdf"
        src.write_bytes(pdf)
        try:
            ppm = subprocess.run(["pdftoppm", "-r", str(dpi), "-singlefile", str(src)], check=True,
                                 capture_output=True, timeout=120).stdout
        except FileNotFoundError as exc:
            raise RuntimeError("pdftoppm is missing; install it: apt-get install -y poppler-utils") from exc
    out = io.BytesIO()
    with Image.open(io.BytesIO(ppm)) as picture:
        picture.save(out, format="PNG")
    return out.getvalue()
