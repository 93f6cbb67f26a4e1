"""postgis: GiST indexes on every geometry column (PostgreSQL only)

On SQLite geometry is a WKB blob filtered through the indexed bbox columns; on
PostGIS the same columns are ``geometry(Geometry, 4326)`` and get a GiST index, so
spatial predicates (``&&``, ``ST_Intersects``, ``ST_Covers``) run in the database.

Revision ID: 0007_postgis
Revises: 0004_incidents
Create Date: 2026-12-06 07:40:00

"""
from typing import Sequence, Union

from alembic import op


# revision identifiers, used by Alembic.
revision: str = '0007_postgis'
down_revision: Union[str, Sequence[str], None] = '0004_incidents'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

TABLES = ("buildings", "communities", "compounds", "service_points", "streets", "plan_grids")


def upgrade() -> None:
    """Add the GiST indexes on PostgreSQL; nothing on SQLite."""
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.create_index(f"ix_{table}_geometry_gist", table, ["geometry"], postgresql_using="gist")


def downgrade() -> None:
    """Drop the GiST indexes on PostgreSQL."""
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.drop_index(f"ix_{table}_geometry_gist", table_name=table)
