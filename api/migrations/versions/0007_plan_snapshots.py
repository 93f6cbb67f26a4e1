"""shared plan state (issue 17 §2): the plan_snapshots table

Revision ID: 0007_plan_snapshots
Revises: 0007_postgis
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import api.models


revision: str = '0007_plan_snapshots'
down_revision: Union[str, Sequence[str], None] = '0007_postgis'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Add the plan_snapshots table (one serialised plan state per plan version)."""
    op.create_table('plan_snapshots',
    sa.Column('plan_version_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('created_at', api.models.UTCDateTime(), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['plan_version_id'], ['plan_versions.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('plan_version_id')
    )


def downgrade() -> None:
    """Drop the plan_snapshots table."""
    op.drop_table('plan_snapshots')
