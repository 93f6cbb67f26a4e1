"""The active grids as a service: which published grid a point or building is in (issue 11)."""
