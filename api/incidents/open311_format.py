"""Open311 GeoReport v2 bodies: service and request dicts, and their JSON / XML renderings.

Times are ISO 8601 with the offset of ``incident_timezone`` (e.g. ``2026-12-06T13:20:00+08:00``).
``status`` is ``open`` for the open workflow states and ``closed`` otherwise; ``status_notes``
gives the Chinese state and, for refused or closed cases, the reason recorded.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Response, jsonify

from api.incidents.models import IncidentCase
from geo.incidents.categories import KINDS, Category
from geo.incidents.workflow import OPEN_STATES, STATES

__all__ = ["iso", "service_dict", "request_dict", "render", "ROOTS"]

#: Root element of each XML document kind.
ROOTS: dict[str, str] = {"services": "services", "requests": "service_requests", "errors": "errors"}
_ITEMS = {"services": "service", "service_requests": "request", "errors": "error", "endpoints": "endpoint",
          "formats": "format", "attributes": "attribute", "values": "value"}


def iso(value: datetime | None, tz: str) -> str | None:
    """ISO 8601 with the local offset, seconds precision."""
    return None if value is None else value.astimezone(ZoneInfo(tz)).isoformat(timespec="seconds")


def service_dict(c: Category) -> dict[str, Any]:
    """One entry of GET services."""
    return {"service_code": c.code, "service_name": c.minor_name,
            "description": f"{KINDS[c.kind]}·{c.major_name}·{c.minor_name}（责任部门：{c.department}）",
            "metadata": False, "type": "realtime", "keywords": f"{c.major_name},{c.minor_name}",
            "group": f"{KINDS[c.kind]}/{c.major_name}"}


def request_dict(case: IncidentCase, categories: Mapping[str, Category], notes: str, tz: str) -> dict[str, Any]:
    """One service request as GET requests shows it (no personal data of the reporter)."""
    cat = categories.get(case.category)
    return {
        "service_request_id": str(case.id), "status": "open" if case.state in OPEN_STATES else "closed",
        "status_notes": notes or STATES[case.state], "service_name": cat.minor_name if cat else case.category,
        "service_code": case.category, "description": case.description,
        "agency_responsible": cat.department if cat else None, "service_notice": None,
        "requested_datetime": iso(case.reported_at, tz), "updated_datetime": iso(case.updated_at, tz),
        "expected_datetime": iso(case.due_at, tz), "address": case.address, "address_id": None, "zipcode": None,
        "lat": case.lat, "long": case.lon, "media_url": None,
    }


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _fill(parent: ET.Element, value: Any, tag: str) -> None:
    if isinstance(value, Mapping):
        for k, v in value.items():
            _fill(ET.SubElement(parent, k), v, k)
    elif isinstance(value, list):
        item = _ITEMS.get(tag, "item")
        for v in value:
            _fill(ET.SubElement(parent, item), v, item)
    else:
        parent.text = _text(value)


def render(body: Any, fmt: str, root: str, status: int = 200) -> Response:
    """*body* as JSON, or as XML under *root* (lists become repeated child elements)."""
    if fmt == "xml":
        element = ET.Element(root)
        _fill(element, body, root)
        data = b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(element, encoding="utf-8")
        return Response(data, status=status, mimetype="text/xml", content_type="text/xml; charset=utf-8")
    response = jsonify(body)
    response.status_code = status
    return response
