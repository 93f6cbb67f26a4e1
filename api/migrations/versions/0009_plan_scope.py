"""plans: each grid's broken rules stored (``plan_grids.violations``), and cells and grids indexed by community

Revision ID: 0009_plan_scope
Revises: 0008_incident_bulk
Create Date: 2026-12-06 13:50:00

"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision: str = '0009_plan_scope'
down_revision: Union[str, Sequence[str], None] = '0008_incident_bulk'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """A planner's community is read by its cells and grids (no scan of the city's), and the plan card
    counts broken rules from the stored ones (NULL: not checked yet) instead of loading the whole plan."""
    with op.batch_alter_table('plan_grids', schema=None) as batch_op:
        batch_op.add_column(sa.Column('violations', sa.String(length=200), nullable=True))
        batch_op.create_index('ix_plan_grids_community', ['plan_version_id', 'community_id'], unique=False)
    with op.batch_alter_table('plan_cells', schema=None) as batch_op:
        batch_op.create_index('ix_plan_cells_community', ['plan_version_id', 'community_id'], unique=False)


def downgrade() -> None:
    """Without the stored rules and the community indexes."""
    with op.batch_alter_table('plan_cells', schema=None) as batch_op:
        batch_op.drop_index('ix_plan_cells_community')
    with op.batch_alter_table('plan_grids', schema=None) as batch_op:
        batch_op.drop_index('ix_plan_grids_community')
        batch_op.drop_column('violations')
