"""plan grids indexed by their code (a grid looked up by code read every grid of the active plans)

Revision ID: 0012_grid_code_index
Revises: 0011_patrol_visit_photo
Create Date: 2026-12-06 14:50:00

"""
from typing import Sequence, Union

from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0012_grid_code_index'
down_revision: Union[str, Sequence[str], None] = '0011_patrol_visit_photo'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """``GET /api/grids/<code>`` and every lookup of a grid by its code: one index probe, not a scan
    of the active plans' grids (115,000 at 1 M buildings)."""
    op.create_index('ix_plan_grids_code', 'plan_grids', ['plan_version_id', 'code'], unique=False)


def downgrade() -> None:
    """Without the code index."""
    op.drop_index('ix_plan_grids_code', table_name='plan_grids')
