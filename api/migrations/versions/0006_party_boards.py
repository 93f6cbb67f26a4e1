"""party cells and notice boards: centre-household links, printed boards

Revision ID: 0006_party_boards
Revises: 0003_register
Create Date: 2026-12-06 05:45:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import api.models


# revision identifiers, used by Alembic.
revision: str = '0006_party_boards'
down_revision: Union[str, Sequence[str], None] = '0003_register'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Add party_links and board_prints (issue 15)."""
    op.create_table('board_prints',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('grid_key', sa.String(length=64), nullable=False),
    sa.Column('plan_id', sa.Integer(), nullable=True),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('size', sa.String(length=8), nullable=False),
    sa.Column('orientation', sa.String(length=16), nullable=False),
    sa.Column('printed_by', sa.String(length=64), nullable=False),
    sa.Column('printed_at', api.models.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('board_prints', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_board_prints_grid_key'), ['grid_key'], unique=False)
    op.create_table('party_links',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('household_id', sa.Integer(), nullable=False),
    sa.Column('centre_id', sa.Integer(), nullable=False),
    sa.Column('distance_m', sa.Float(), nullable=True),
    sa.Column('method', sa.String(length=16), nullable=False),
    sa.Column('fixed', sa.Boolean(), nullable=False),
    sa.Column('created_at', api.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['centre_id'], ['register_households.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['household_id'], ['register_households.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('household_id')
    )
    with op.batch_alter_table('party_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_party_links_centre_id'), ['centre_id'], unique=False)


def downgrade() -> None:
    """Drop party_links and board_prints."""
    with op.batch_alter_table('board_prints', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_board_prints_grid_key'))
    op.drop_table('board_prints')
    with op.batch_alter_table('party_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_party_links_centre_id'))
    op.drop_table('party_links')
