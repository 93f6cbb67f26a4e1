"""plan summaries: the plan card's numbers of each plan version kept in one row

Revision ID: 0013_plan_summary
Revises: 0012_grid_code_index
Create Date: 2026-12-06 16:30:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0013_plan_summary'
down_revision: str | Sequence[str] | None = '0012_grid_code_index'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """The plan card reads one row instead of counting the plan's grids (115,000 at 1 M buildings).

    No rows are written here: a plan without one is counted once by its first card."""
    op.create_table('plan_summaries',
    sa.Column('plan_version_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('lo', sa.Integer(), nullable=False),
    sa.Column('hi', sa.Integer(), nullable=False),
    sa.Column('grids', sa.Integer(), nullable=False),
    sa.Column('households', sa.Integer(), nullable=False),
    sa.Column('buildings', sa.Integer(), nullable=False),
    sa.Column('normal', sa.Integer(), nullable=False),
    sa.Column('in_range', sa.Integer(), nullable=False),
    sa.Column('unchecked', sa.Integer(), nullable=False),
    sa.Column('communities', sa.Integer(), nullable=False),
    sa.Column('rules', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['plan_version_id'], ['plan_versions.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('plan_version_id')
    )


def downgrade() -> None:
    """Without the stored summaries."""
    op.drop_table('plan_summaries')
