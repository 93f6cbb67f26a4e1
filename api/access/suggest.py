"""Suggested new service sites (issue 10 §6): :func:`geo.maxcover.suggest_sites` with the app's settings.

One entry point for the ``/access`` page and ``wangge access --suggest K``: the category's
own circle level (its checklist row), the max-cover settings, and a Chinese error when K
or the category cannot be served.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from geo.access import AccessResult
from geo.errors import LayerError
from geo.lifecircle import DEFAULT_CHECKLIST
from geo.maxcover import SiteSuggestion, suggest_sites

__all__ = ["SuggestError", "category_level", "check_k", "suggest_new_sites"]


class SuggestError(LayerError):
    """A suggestion that cannot be made as asked (bad K, no walk network, unknown category).

    ``str()`` is the command-line text; ``message_zh`` and ``fix_zh`` are the page's wording.
    """

    def __init__(self, message: str, *, message_zh: str = "无法按所给条件建议新址",
                 fix_zh: str = "调整建议新址数或设施类别后重试") -> None:
        super().__init__(message)  # defaults: an unpickled copy (rebuilt from its message alone) still reads well
        self.message_zh, self.fix_zh = message_zh, fix_zh


def category_level(result: AccessResult, category: str) -> float:
    """Walk (m) of *category*'s own circle level in *result* (its checklist row; else the largest)."""
    rank = next((i.level for i in DEFAULT_CHECKLIST.items if i.category == category), None)
    levels = result.levels_m
    return float(levels[rank - 1]) if rank is not None and rank <= len(levels) else float(levels[-1])


def check_k(k: int, *, max_sites: int, option: str) -> int:
    """*k* when 1 <= k <= *max_sites*; else :class:`SuggestError` naming *option* and the setting."""
    if k < 1 or k > max_sites:
        raise SuggestError(f"建议新址数 {option}={k} 须在 1 到 {max_sites} 之间 / the number of new sites must be "
                           f"1..{max_sites} (setting maxcover_max_sites); choose a K in that range",
                           message_zh=f"建议新址数 {k} 超出范围", fix_zh=f"填写 1 到 {max_sites} 之间的整数（设置 maxcover_max_sites）")
    return k


def suggest_new_sites(result: AccessResult, category: str, k: int, *, settings: Mapping[str, Any],
                      level_m: float | None = None, option: str = "k") -> SiteSuggestion:
    """Suggest *k* new sites of *category* covering the most households its circle misses.

    Parameters
    ----------
    result
        A walk-network :class:`~geo.access.AccessResult` (it carries the graph and the
        ``dist_<category>`` of every building).
    category
        A category of *result* (``dist_<category>`` column).
    k
        Number of new sites, 1..``maxcover_max_sites``.
    settings
        The app's settings: ``maxcover_candidates``, ``maxcover_time_limit_s``,
        ``maxcover_max_sites``, ``walk_max_snap_m``.
    level_m
        Walk that counts as covered; default: the category's own circle level.
    option
        Name of the K field in messages (``k`` on the page, ``--suggest`` on the CLI).

    Returns
    -------
    SiteSuggestion
        ``sites`` ranked by ``households_added`` (households each site newly reaches).
    """
    check_k(k, max_sites=int(settings["maxcover_max_sites"]), option=option)
    if result.graph is None:
        raise SuggestError("建议新址需要步行网络结果 / new sites need the walk-network analysis; "
                           "use the network mode, not straight-line screening",
                           message_zh="建议新址需要步行网络的分析结果", fix_zh="切换到“步行网络”模式后再建议新址")
    if f"dist_{category}" not in result.buildings.columns:
        raise SuggestError(f"没有类别 {category!r} 的服务点 / no service points of category {category!r}; "
                           f"choose one of {', '.join(result.summary.get('categories', ())) or 'none'}",
                           message_zh=f"没有类别 {category!r} 的服务点",
                           fix_zh=f"可选：{'、'.join(result.summary.get('categories', ())) or '无'}")
    level = category_level(result, category) if level_m is None else float(level_m)
    return suggest_sites(result.graph, result.buildings, category=category, level_m=level, k=k,
                         n_candidates=int(settings["maxcover_candidates"]),
                         time_limit_s=float(settings["maxcover_time_limit_s"]),
                         max_snap_m=float(settings["walk_max_snap_m"]))
