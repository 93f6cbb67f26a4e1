"""plan snapshots stored in parts (a 1 M-building plan's state is over PostgreSQL's 1 GB field limit)

Revision ID: 0010_snapshot_parts
Revises: 0009_plan_scope
Create Date: 2026-12-06 14:10:00

"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

import api.models

# revision identifiers, used by Alembic.
revision: str = '0010_snapshot_parts'
down_revision: Union[str, Sequence[str], None] = '0009_plan_scope'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def _create(with_part: bool) -> None:
    columns = [sa.Column('plan_version_id', sa.Integer(), nullable=False)]
    if with_part:
        columns.append(sa.Column('part', sa.Integer(), nullable=False))
    columns += [sa.Column('key', sa.String(length=200), nullable=False),
                sa.Column('created_at', api.models.UTCDateTime(), nullable=False),
                sa.Column('data', sa.LargeBinary(), nullable=False),
                sa.ForeignKeyConstraint(['plan_version_id'], ['plan_versions.id'], ondelete='CASCADE'),
                sa.PrimaryKeyConstraint('plan_version_id', *(['part'] if with_part else []))]
    op.create_table('plan_snapshots', *columns)


def upgrade() -> None:
    """One row per part of a snapshot. The table is a cache (every state can be built again from
    its plan's cells), so it is recreated empty rather than rewritten."""
    op.drop_table('plan_snapshots')
    _create(with_part=True)


def downgrade() -> None:
    """One row per snapshot again (emptied: a cache)."""
    op.drop_table('plan_snapshots')
    _create(with_part=False)
