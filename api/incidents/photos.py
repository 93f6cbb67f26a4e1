"""Incident photos: type and size checked with Pillow, EXIF GPS read, stored under the instance folder.

Files live in ``<instance>/incident_photos/<case id>/`` with a JPEG thumbnail beside each;
the database keeps relative paths. Only JPEG, PNG and WebP pictures are accepted, whatever
the file name or the browser-declared type says.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError
from sqlalchemy.orm import Session

from api.incidents.models import IncidentPhoto

__all__ = ["PhotoError", "Photo", "check_photos", "store_photos", "exif_lonlat", "PHOTO_DIR", "PHOTO_TYPES"]

PHOTO_DIR = "incident_photos"
_TYPES = {"JPEG": ("jpg", "image/jpeg"), "PNG": ("png", "image/png"), "WEBP": ("webp", "image/webp")}
#: Accepted photo formats -> (file extension, content type); patrol visit photos use them too.
PHOTO_TYPES = _TYPES
_GPS_IFD = 0x8825


class PhotoError(ValueError):
    """A photo was refused; the message (Chinese) names the file and the fix."""


@dataclass(frozen=True)
class Photo:
    """A checked photo: bytes, format, EXIF location (WGS84) when present."""

    name: str
    data: bytes
    fmt: str
    lon: float | None
    lat: float | None


def _degrees(value: Any, ref: str) -> float:
    d, m, s = (float(v) for v in value)
    out = d + m / 60 + s / 3600
    return -out if ref in ("S", "W") else out


def exif_lonlat(image: Image.Image) -> tuple[float | None, float | None]:
    """(lon, lat) from the EXIF GPS block, or ``(None, None)``."""
    try:
        gps = image.getexif().get_ifd(_GPS_IFD)
        if not gps or 2 not in gps or 4 not in gps:
            return None, None
        return _degrees(gps[4], gps.get(3, "E")), _degrees(gps[2], gps.get(1, "N"))
    except (AttributeError, TypeError, ValueError, ZeroDivisionError):
        return None, None


def check_photos(files: list[tuple[str, bytes]], settings: Mapping[str, Any]) -> list[Photo]:
    """Checked photos, or :class:`PhotoError` for too many, too large or not a picture."""
    files = [(n, d) for n, d in files if d]
    most, limit = int(settings["incident_max_photos"]), float(settings["incident_photo_max_mb"])
    if len(files) > most:
        raise PhotoError(f"照片最多 {most} 张，收到 {len(files)} 张；请删减后重试")
    out = []
    for name, data in files:
        if len(data) > limit * 1024 * 1024:
            raise PhotoError(f"照片 {name} 大小 {len(data) / 1048576:.1f} MB，超过 {limit:g} MB；请压缩后重试")
        try:
            with Image.open(io.BytesIO(data)) as img:
                img.verify()
            with Image.open(io.BytesIO(data)) as img:
                fmt, (lon, lat) = str(img.format), exif_lonlat(img)
        except (UnidentifiedImageError, OSError, SyntaxError):
            raise PhotoError(f"文件 {name} 不是可识别的图片；请上传 JPEG、PNG 或 WebP 照片") from None
        if fmt not in _TYPES:
            raise PhotoError(f"照片 {name} 的格式 {fmt} 不支持；请上传 JPEG、PNG 或 WebP")
        out.append(Photo(name, data, fmt, lon, lat))
    return out


def store_photos(session: Session, photos: list[Photo], *, case_id: int, event_id: int | None, instance: str,
                 settings: Mapping[str, Any]) -> list[IncidentPhoto]:
    """Write the files and thumbnails and add their rows (the caller's transaction decides)."""
    folder = Path(instance) / PHOTO_DIR / str(case_id)
    folder.mkdir(parents=True, exist_ok=True)
    px = int(settings["incident_thumbnail_px"])
    rows = []
    for p in photos:
        ext, mime = _TYPES[p.fmt]
        stem = uuid.uuid4().hex
        (folder / f"{stem}.{ext}").write_bytes(p.data)
        with Image.open(io.BytesIO(p.data)) as img:
            thumb = img.convert("RGB")
            thumb.thumbnail((px, px))
            thumb.save(folder / f"{stem}.thumb.jpg", "JPEG", quality=80)
        row = IncidentPhoto(case_id=case_id, event_id=event_id, path=f"{case_id}/{stem}.{ext}",
                            thumb_path=f"{case_id}/{stem}.thumb.jpg", content_type=mime, size=len(p.data),
                            lon=p.lon, lat=p.lat)
        session.add(row)
        rows.append(row)
    session.flush()
    return rows
