"""Parse fixes as stock tracker apps send them: the OsmAnd protocol and Traccar Client's JSON.

OsmAnd protocol (Traccar's ``osmand`` port, also spoken by OsmAnd's online tracking and
older Traccar Client versions): ``GET`` or ``POST`` with query or form fields ``id`` (or
``deviceid``), ``lat``, ``lon``, ``timestamp`` (Unix seconds or milliseconds, or an ISO
time), ``speed``, ``bearing`` (or ``heading``), ``altitude``, ``accuracy`` (OsmAnd's own
template sends it as ``hdop``), ``batt``.

Traccar Client (version 8+) posts JSON::

    {"device_id": "…", "location": {"timestamp": "2024-05-06T01:00:00.000Z",
     "coords": {"latitude": …, "longitude": …, "accuracy": …, "speed": …, "heading": …,
                "altitude": …}, "battery": {"level": 0.8, "is_charging": false}}}

``location`` may also be a list (batched upload of fixes buffered offline).
Speeds are stored as sent; cleaning derives speed from positions and times.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["device_id", "ProtocolError", "IncomingFix", "fixes_from_query", "fixes_from_traccar_json"]


class ProtocolError(ValueError):
    """The request is not a fix we can read; the message names the field and the fix (Chinese)."""


@dataclass(frozen=True)
class IncomingFix:
    """One fix as received, before any cleaning."""

    device_id: str
    t: datetime
    lon: float
    lat: float
    accuracy: float | None = None
    speed: float | None = None
    bearing: float | None = None
    altitude: float | None = None
    battery: float | None = None


def _number(value: Any, name: str, *, required: bool = False) -> float | None:
    if value is None or value == "":
        if required:
            raise ProtocolError(f"缺少参数 {name}；请在跟踪应用中填写服务器地址 …/api/patrol/osmand 并开启定位")
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ProtocolError(f"参数 {name}={value!r} 不是数字；请检查跟踪应用的上报格式") from None
    if not math.isfinite(out):
        raise ProtocolError(f"参数 {name}={value!r} 不是有限数字；请检查跟踪应用的上报格式")
    return out


def _time(value: Any) -> datetime:
    """Unix seconds / milliseconds or an ISO 8601 time (UTC when no zone is given)."""
    if value is None or value == "":
        raise ProtocolError("缺少参数 timestamp；请升级跟踪应用或开启“发送时间”")
    text = str(value).strip()
    try:
        num = float(text)
    except ValueError:
        try:
            t = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T", 1))
        except ValueError:
            raise ProtocolError(f"时间 timestamp={text!r} 无法识别；应为 Unix 秒、毫秒或 ISO 8601 时间") from None
        return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
    if not math.isfinite(num) or num < 0:
        raise ProtocolError(f"时间 timestamp={text!r} 无法识别；应为 Unix 秒、毫秒或 ISO 8601 时间")
    return datetime.fromtimestamp(num / 1000.0 if num > 1e11 else num, tz=UTC)


def device_id(value: Any) -> str:
    """A device id as trackers and the binding form send it, checked (empty, over 100 characters, not text: refused)."""
    if isinstance(value, list | dict):
        raise ProtocolError("设备标识 id 须为一段文字，不能是列表或对象；请填写跟踪应用中的设备标识")
    device = str(value or "").strip()
    if not device:
        raise ProtocolError("缺少设备标识 id；请在跟踪应用中填写设备标识并由管理员绑定到网格员")
    if len(device) > 100:
        raise ProtocolError("设备标识 id 超过 100 个字符；请在跟踪应用中改用较短的标识")
    return device


def fixes_from_query(params: Mapping[str, Any]) -> list[IncomingFix]:
    """The fix of an OsmAnd-protocol request (query string or form fields)."""
    device = device_id(params.get("id") or params.get("deviceid"))
    return [IncomingFix(
        device_id=device, t=_time(params.get("timestamp")),
        lon=_number(params.get("lon"), "lon", required=True),  # type: ignore[arg-type]
        lat=_number(params.get("lat"), "lat", required=True),  # type: ignore[arg-type]
        # OsmAnd's URL template sends its accuracy (m) as hdop={3}
        accuracy=_number(params.get("accuracy", params.get("hdop")), "accuracy"),
        speed=_number(params.get("speed"), "speed"),
        bearing=_number(params.get("bearing", params.get("heading")), "bearing"),
        altitude=_number(params.get("altitude"), "altitude"),
        battery=_number(params.get("batt"), "batt"))]


def _traccar_location(device: str, loc: Any) -> IncomingFix:
    if not isinstance(loc, Mapping) or not isinstance(loc.get("coords"), Mapping):
        raise ProtocolError("JSON 中 location.coords 缺失；请使用 Traccar Client 的标准上报格式")
    c = loc["coords"]
    battery = loc.get("battery") if isinstance(loc.get("battery"), Mapping) else {}
    level = _number(battery.get("level"), "battery.level")
    return IncomingFix(
        device_id=device, t=_time(loc.get("timestamp")),
        lon=_number(c.get("longitude"), "coords.longitude", required=True),  # type: ignore[arg-type]
        lat=_number(c.get("latitude"), "coords.latitude", required=True),  # type: ignore[arg-type]
        accuracy=_number(c.get("accuracy"), "coords.accuracy"),
        speed=_number(c.get("speed"), "coords.speed"),
        bearing=_number(c.get("heading"), "coords.heading"),
        altitude=_number(c.get("altitude"), "coords.altitude"),
        battery=None if level is None else level * 100.0)


def fixes_from_traccar_json(body: Any) -> list[IncomingFix]:
    """The fixes of a Traccar Client JSON body (one location or a batch)."""
    if not isinstance(body, Mapping):
        raise ProtocolError("请求体不是 JSON 对象；请使用 Traccar Client 的标准上报格式")
    device = device_id(body.get("device_id"))
    locs = body.get("location")
    if locs is None:
        raise ProtocolError("JSON 中缺少 location；请使用 Traccar Client 的标准上报格式")
    items = locs if isinstance(locs, list) else [locs]
    return [_traccar_location(device, loc) for loc in items]

