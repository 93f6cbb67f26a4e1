"""patrol: tracker devices bound to workers, raw fixes with the grid in force, unknown devices, key-person visits

Revision ID: 0005_patrol
Revises: 0003_register
Create Date: 2026-12-06 05:40:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import api.models


# revision identifiers, used by Alembic.
revision: str = '0005_patrol'
down_revision: Union[str, Sequence[str], None] = '0006_party_boards'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Add the patrol tables (issue 14)."""
    op.create_table('patrol_devices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('device_id', sa.String(length=100), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('label', sa.String(length=100), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('bound_at', api.models.UTCDateTime(), nullable=False),
    sa.Column('bound_by', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('device_id')
    )
    with op.batch_alter_table('patrol_devices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_patrol_devices_user_id'), ['user_id'], unique=False)

    op.create_table('patrol_fixes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('device_id', sa.String(length=100), nullable=True),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('t', api.models.UTCDateTime(), nullable=False),
    sa.Column('lon', sa.Float(), nullable=False),
    sa.Column('lat', sa.Float(), nullable=False),
    sa.Column('accuracy', sa.Float(), nullable=True),
    sa.Column('speed', sa.Float(), nullable=True),
    sa.Column('bearing', sa.Float(), nullable=True),
    sa.Column('altitude', sa.Float(), nullable=True),
    sa.Column('battery', sa.Float(), nullable=True),
    sa.Column('grid_code', sa.String(length=64), nullable=True),
    sa.Column('plan_version_id', sa.Integer(), nullable=True),
    sa.Column('received_at', api.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('user_id', 't', name='uq_patrol_fix_user_t')
    )
    with op.batch_alter_table('patrol_fixes', schema=None) as batch_op:
        batch_op.create_index('ix_patrol_fixes_t', ['t'], unique=False)
        batch_op.create_index(batch_op.f('ix_patrol_fixes_grid_code'), ['grid_code'], unique=False)

    op.create_table('patrol_unknown_devices',
    sa.Column('device_id', sa.String(length=100), nullable=False),
    sa.Column('first_seen', api.models.UTCDateTime(), nullable=False),
    sa.Column('last_seen', api.models.UTCDateTime(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_lon', sa.Float(), nullable=True),
    sa.Column('last_lat', sa.Float(), nullable=True),
    sa.PrimaryKeyConstraint('device_id')
    )
    op.create_table('patrol_visits',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('keyperson_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('at', api.models.UTCDateTime(), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('lon', sa.Float(), nullable=True),
    sa.Column('lat', sa.Float(), nullable=True),
    sa.Column('grid_code', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['keyperson_id'], ['register_keypersons.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('patrol_visits', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_patrol_visits_keyperson_id'), ['keyperson_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_patrol_visits_user_id'), ['user_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_patrol_visits_grid_code'), ['grid_code'], unique=False)


def downgrade() -> None:
    """Drop the patrol tables."""
    with op.batch_alter_table('patrol_visits', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_patrol_visits_grid_code'))
        batch_op.drop_index(batch_op.f('ix_patrol_visits_user_id'))
        batch_op.drop_index(batch_op.f('ix_patrol_visits_keyperson_id'))
    op.drop_table('patrol_visits')
    op.drop_table('patrol_unknown_devices')
    with op.batch_alter_table('patrol_fixes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_patrol_fixes_grid_code'))
        batch_op.drop_index('ix_patrol_fixes_t')
    op.drop_table('patrol_fixes')
    with op.batch_alter_table('patrol_devices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_patrol_devices_user_id'))
    op.drop_table('patrol_devices')
