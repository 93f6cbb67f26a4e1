"""session tokens on users and per (account, client) login throttling (issue 16)

Revision ID: 0003_websec
Revises: 0002
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import api.models


revision: str = '0003_websec'
down_revision: Union[str, Sequence[str], None] = '0003_plan_workspace'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Add users.session_token and the login_throttle table."""
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_token', sa.String(length=64), nullable=True))
    op.create_table('login_throttle',
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('client', sa.String(length=64), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('last_failure_at', api.models.UTCDateTime(), nullable=False),
    sa.Column('locked_until', api.models.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('username', 'client')
    )
    with op.batch_alter_table('login_throttle', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_login_throttle_last_failure_at'), ['last_failure_at'], unique=False)


def downgrade() -> None:
    """Drop what upgrade added."""
    with op.batch_alter_table('login_throttle', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_login_throttle_last_failure_at'))
    op.drop_table('login_throttle')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('session_token')
