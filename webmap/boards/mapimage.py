"""The boundary map of a notice board, drawn offline with matplotlib (no tiles, no network).

Chinese legend text needs a CJK font: the first Noto Sans CJK / WenQuanYi font installed is
registered with matplotlib (its font cache may predate the font's installation).
"""

from __future__ import annotations

import io
import subprocess
from functools import lru_cache

import geopandas as gpd
import matplotlib.font_manager as fm
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from geo.crs import local_metric_crs

__all__ = ["CJK_FAMILIES", "cjk_font_path", "cjk_family", "board_map_png"]

#: Font families tried, in order, for Chinese text (boards, map legends, PDFs).
CJK_FAMILIES: tuple[str, ...] = ("Noto Sans CJK SC", "Noto Serif CJK SC", "WenQuanYi Zen Hei")


@lru_cache(maxsize=1)
def cjk_font_path() -> str:
    """Path of an installed CJK font file (raises naming the Debian package to install)."""
    for family in CJK_FAMILIES:
        out = subprocess.run(["fc-match", "-f", "%{family}\n%{file}", family], capture_output=True, text=True,
                             check=False).stdout.split("\n")
        if len(out) == 2 and family in out[0]:
            return out[1]
    raise RuntimeError("no CJK font found for notice boards; install it: apt-get install -y fonts-noto-cjk")


@lru_cache(maxsize=1)
def cjk_family() -> str:
    """The matplotlib family name of :func:`cjk_font_path`, registered with matplotlib."""
    path = cjk_font_path()
    fm.fontManager.addfont(path)
    return fm.FontProperties(fname=path).get_name()


def _legend(ax: Axes, family: str, *, has_services: bool, has_party: bool) -> None:
    items = [Patch(facecolor="#fff3d6", edgecolor="#c0392b", linewidth=2, label="网格边界"),
             Patch(facecolor="#9aa5b1", edgecolor="#5d6d7e", label="楼栋"),
             Line2D([0], [0], color="#7f8c8d", linewidth=2, label="道路")]
    if has_services:
        items.append(Line2D([0], [0], marker="o", color="w", markerfacecolor="#1f77b4", markersize=9, label="服务点"))
    if has_party:
        items.append(Line2D([0], [0], marker="*", color="w", markerfacecolor="#d62728", markersize=14,
                            label="党员中心户"))
    ax.legend(handles=items, loc="lower left", prop={"family": family, "size": 9}, framealpha=0.9)


def board_map_png(grid: gpd.GeoDataFrame, buildings: gpd.GeoDataFrame, streets: gpd.GeoDataFrame,
                  service_points: gpd.GeoDataFrame, party_points: gpd.GeoDataFrame, *,
                  width_in: float = 7.0, height_in: float = 5.5, dpi: int = 200, kind: str = "png") -> bytes:
    """PNG (or JPEG) of the grid's boundary, buildings, streets, service points and party cell markers.

    Parameters
    ----------
    grid
        The grid polygon (one row, any CRS); the other layers are drawn clipped to its
        surroundings. Layers may be empty.
    width_in, height_in, dpi
        Picture size in inches and resolution.
    kind
        ``png``, or ``jpeg`` for print: an opaque JPEG goes into a PDF as it is, where a PNG
        is decoded and re-compressed (and its alpha channel split off) for every board.
    """
    if kind not in ("png", "jpeg"):
        raise ValueError(f"board_map_png: kind must be png or jpeg; got {kind!r}")
    family = cjk_family()
    crs = local_metric_crs(grid)
    g = grid.to_crs(crs)
    minx, miny, maxx, maxy = g.total_bounds
    pad = max(maxx - minx, maxy - miny) * 0.12 + 20.0
    # A Figure without pyplot: no global state, safe in web server threads.
    fig = Figure(figsize=(width_in, height_in), dpi=dpi)
    ax = fig.subplots()
    ax.set_facecolor("#fbfbf8")
    g.plot(ax=ax, facecolor="#fff3d6", edgecolor="none")
    if len(streets):
        streets.to_crs(crs).plot(ax=ax, color="#7f8c8d", linewidth=1.2, zorder=2)
    if len(buildings):
        buildings.to_crs(crs).plot(ax=ax, facecolor="#9aa5b1", edgecolor="#5d6d7e", linewidth=0.3, zorder=3)
    g.boundary.plot(ax=ax, color="#c0392b", linewidth=2.5, zorder=4)
    if len(service_points):
        service_points.to_crs(crs).plot(ax=ax, color="#1f77b4", markersize=40, edgecolor="white", zorder=5)
    if len(party_points):
        party_points.to_crs(crs).plot(ax=ax, color="#d62728", marker="*", markersize=160, edgecolor="white",
                                      zorder=6)
    ax.set_xlim(minx - pad, maxx + pad)
    ax.set_ylim(miny - pad, maxy + pad)
    ax.set_aspect("equal")
    ax.set_axis_off()
    _legend(ax, family, has_services=bool(len(service_points)), has_party=bool(len(party_points)))
    ax.annotate("N ↑", xy=(0.97, 0.95), xycoords="axes fraction", ha="right", fontsize=12, family=family,
                parse_math=False)
    fig.tight_layout(pad=0.2)
    buf = io.BytesIO()
    if kind == "jpeg":
        # No chroma subsampling: thin red boundary lines and the red stars keep their colour.
        fig.savefig(buf, format="jpeg", dpi=dpi, pil_kwargs={"quality": 92, "subsampling": 0})
    else:
        # Fast zlib level: the PNG is embedded once and re-compressed in the PDF anyway.
        fig.savefig(buf, format="png", dpi=dpi, pil_kwargs={"compress_level": 1})
    return buf.getvalue()
