"""Printable grid notice boards (网格公示牌): boundary map image, QR code, board HTML, PDF and PNG."""
