"""Options shared by every command that reads layer files (import, partition, access).

Each such command takes the same ``--layer KIND=NAME``, ``--field KIND:SRC=DST``,
``--crs``, ``--coords`` and ``--encoding`` options, reads its files through
:func:`geo.prepare.read_files` / :func:`geo.prepare.prepare_files` (so a layer named
after its kind is picked by itself in a multi-layer GeoPackage and common columns are
understood), and prints which column became each layer's id. Errors name these options,
never Python parameters.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click
from flask import current_app, has_app_context

from geo.layers import SCHEMAS
from geo.settings import DEFAULTS

__all__ = ["LayerOptions", "layer_options", "cli_settings", "echo_notes", "file_paths", "KIND_ALIASES"]

F = TypeVar("F", bound=Callable[..., Any])

#: Option spellings of layer kinds (``--services`` reads ``service_points``).
KIND_ALIASES: dict[str, str] = {"services": "service_points", "service": "service_points",
                                "pois": "service_points"}


def _kind(text: str, option: str) -> str:
    kind = KIND_ALIASES.get(text.strip(), text.strip())
    if kind not in SCHEMAS:
        raise click.BadParameter(f"unknown layer {text!r}; layers are {', '.join(SCHEMAS)} "
                                 "(services = service_points)", param_hint=option)
    return kind


def _pair(value: str, *, option: str, example: str) -> tuple[str, str]:
    key, sep, rest = value.partition("=")
    if not sep or not key.strip() or not rest.strip():
        raise click.BadParameter(f"{value!r}: write it as {example}", param_hint=option)
    return key.strip(), rest.strip()


@dataclass(frozen=True)
class LayerOptions:
    """The parsed ``--layer``, ``--field``, ``--crs``, ``--coords`` and ``--encoding``."""

    layers: dict[str, str]
    fields: dict[str, dict[str, str]]
    crs: str | None = None
    coords: str = "wgs84"
    encoding: str | None = None

    @classmethod
    def parse(cls, layers: tuple[str, ...], fields: tuple[str, ...], *, crs: str | None = None,
              coords: str = "wgs84", encoding: str | None = None) -> LayerOptions:
        """Parse the raw option values; ``click.BadParameter`` naming the option when malformed."""
        chosen: dict[str, str] = {}
        for value in layers:
            kind, name = _pair(value, option="--layer", example="buildings=楼栋")
            chosen[_kind(kind, "--layer")] = name
        maps: dict[str, dict[str, str]] = {}
        for value in fields:
            kind, sep, mapping = value.partition(":")
            if not sep:
                raise click.BadParameter(
                    f"{value!r}: start with a layer ({', '.join(SCHEMAS)}), e.g. buildings:楼号=building_id",
                    param_hint="--field")
            src, dst = _pair(mapping, option="--field", example="buildings:楼号=building_id")
            maps.setdefault(_kind(kind, "--field"), {})[src] = dst
        return cls(chosen, maps, crs, coords, encoding)

    def with_field(self, kind: str, src: str | None, dst: str) -> LayerOptions:
        """A copy with ``--field kind:src=dst`` added (no-op when *src* is None or *dst*)."""
        if not src or src == dst:
            return self
        fields = {k: dict(v) for k, v in self.fields.items()}
        fields.setdefault(kind, {})[src] = dst
        return LayerOptions(self.layers, fields, self.crs, self.coords, self.encoding)

    def read_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`geo.prepare.read_files` / ``prepare_files``."""
        return {"field_maps": self.fields or None, "source_layers": self.layers or None,
                "declared_crs": self.crs, "coord_system": self.coords, "encoding": self.encoding}


def layer_options(func: F) -> F:
    """Add ``--layer``, ``--field``, ``--crs``, ``--coords`` and ``--encoding`` to a command."""
    options = [
        click.option("--layer", "layers", multiple=True, metavar="KIND=LAYERNAME",
                     help="Layer inside a multi-layer file, e.g. buildings=楼栋 (repeatable); "
                          "by default the layer named after the kind (buildings, streets/roads, "
                          "compounds/landuse, services/pois, communities)."),
        click.option("--field", "fields", multiple=True, metavar="KIND:SRC=DST",
                     help="Rename a column to its canonical name, e.g. buildings:户数=households "
                          "(repeatable). Ids default to a unique id/fid/osm_id column, else the feature id."),
        click.option("--crs", "declared_crs", metavar="EPSG:XXXX",
                     help="CRS of files that carry none (坐标系), e.g. EPSG:4490."),
        click.option("--coords", type=click.Choice(["wgs84", "gcj02", "bd09", "cgcs2000"]), default="wgs84",
                     show_default=True, help="Coordinate system of lon/lat input: gcj02 = Gaode/Tencent, "
                                             "bd09 = Baidu."),
        click.option("--encoding", metavar="NAME",
                     help="Text encoding of the files, e.g. gbk (default: UTF-8, GBK detected)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def cli_settings() -> dict[str, Any]:
    """Settings of the running app, or the defaults with ``WANGGE_<NAME>`` overrides."""
    if has_app_context():
        return dict(current_app.config["WANGGE"])
    from api.config import coerce_setting

    settings = dict(DEFAULTS)
    for name in DEFAULTS:
        raw = os.environ.get(f"WANGGE_{name.upper()}")
        if raw is not None:
            settings[name] = coerce_setting(name, raw)
    return settings


def echo_notes(report: Any, *, err: bool = True) -> None:
    """Print the columns the reader recognised (which column became each layer's id)."""
    for issue in report.issues:
        if issue.code == "columns_recognised":
            click.echo(f"  列识别 columns: {issue}", err=err)


def file_paths(given: Mapping[str, Path | None]) -> dict[str, Path]:
    """``{kind: path}`` of the layer files given (None dropped)."""
    return {KIND_ALIASES.get(k, k): p for k, p in given.items() if p is not None}
