"""plan cells, plan edits, building cell ids and grid statistics (issue 4)

Revision ID: 0002
Revises: 0001
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import api.models


revision: str = '0002'
down_revision: Union[str, Sequence[str], None] = '0001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Add plan_cells, plan_edits, plan_assignments.cell_id and plan_grids statistics."""
    op.create_table('plan_cells',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('plan_version_id', sa.Integer(), nullable=False),
    sa.Column('cell_id', sa.String(length=80), nullable=False),
    sa.Column('community_id', sa.String(length=64), nullable=True),
    sa.Column('grid_id', sa.String(length=64), nullable=False),
    sa.Column('households', sa.Integer(), nullable=False),
    sa.Column('buildings', sa.Integer(), nullable=False),
    sa.Column('geometry', api.models.Geometry(), nullable=False),
    sa.ForeignKeyConstraint(['plan_version_id'], ['plan_versions.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('plan_version_id', 'cell_id')
    )
    with op.batch_alter_table('plan_cells', schema=None) as batch_op:
        batch_op.create_index('ix_plan_cells_grid', ['plan_version_id', 'grid_id'], unique=False)

    op.create_table('plan_edits',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('plan_version_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('op', sa.String(length=32), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('inverse', sa.JSON(), nullable=False),
    sa.Column('author', sa.String(length=64), nullable=False),
    sa.Column('at', api.models.UTCDateTime(), nullable=False),
    sa.Column('undone', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['plan_version_id'], ['plan_versions.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('plan_version_id', 'seq')
    )

    with op.batch_alter_table('plan_assignments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cell_id', sa.String(length=80), nullable=True))
        batch_op.create_index('ix_plan_assignments_cell', ['plan_version_id', 'cell_id'], unique=False)

    with op.batch_alter_table('plan_grids', schema=None) as batch_op:
        batch_op.add_column(sa.Column('area_m2', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('polsby_popper', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('street_share', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('flags', sa.String(length=200), nullable=True))


def downgrade() -> None:
    """Drop what upgrade added."""
    with op.batch_alter_table('plan_grids', schema=None) as batch_op:
        batch_op.drop_column('flags')
        batch_op.drop_column('street_share')
        batch_op.drop_column('polsby_popper')
        batch_op.drop_column('area_m2')

    with op.batch_alter_table('plan_assignments', schema=None) as batch_op:
        batch_op.drop_index('ix_plan_assignments_cell')
        batch_op.drop_column('cell_id')

    op.drop_table('plan_edits')
    with op.batch_alter_table('plan_cells', schema=None) as batch_op:
        batch_op.drop_index('ix_plan_cells_grid')
    op.drop_table('plan_cells')
