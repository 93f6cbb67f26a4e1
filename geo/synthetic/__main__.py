"""``python -m geo.synthetic``: generate a district and write it to a GeoPackage."""

from __future__ import annotations

import sys

from geo.synthetic._io import main

sys.exit(main())
