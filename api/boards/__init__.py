"""Grid notice boards (网格公示牌): content from the active grids and the register, print jobs, public pages."""
