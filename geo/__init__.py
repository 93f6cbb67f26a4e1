"""Pure geospatial logic of Wangge: layers, validation, partitioning, access.

Nothing in this package imports Flask, SQLAlchemy or folium; functions take
GeoDataFrames and explicit keyword options and return GeoDataFrames, Series or
frozen dataclasses.
"""
