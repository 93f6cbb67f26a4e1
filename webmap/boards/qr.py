"""QR codes of notice boards (segno, pure Python)."""

from __future__ import annotations

import base64
import io

import segno

__all__ = ["qr_png", "data_uri"]


def qr_png(url: str, *, scale: int = 10) -> bytes:
    """PNG of a QR code (error correction M, quiet zone of 4 modules) encoding *url*."""
    buf = io.BytesIO()
    segno.make(url, error="m").save(buf, kind="png", scale=scale, border=4)
    return buf.getvalue()


def data_uri(data: bytes, mime: str = "image/png") -> str:
    """A ``data:`` URI embedding *data* (boards carry their pictures; no file or network access)."""
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
