"""incidents: notifications (inbox), the outbox of external messages, public tracking codes, (category, lat) index

Revision ID: 0007_incident_notify
Revises: 0007_plan_snapshots
Create Date: 2026-12-06 07:50:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import api.models


# revision identifiers, used by Alembic.
revision: str = '0007_incident_notify'
down_revision: Union[str, Sequence[str], None] = '0007_plan_snapshots'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Add the inbox, the outbox and the residents' tracking codes (issue 13); index cases by (category, lat)."""
    with op.batch_alter_table('incident_cases', schema=None) as batch_op:
        batch_op.drop_index('ix_incident_cases_category')
        batch_op.create_index('ix_incident_cases_category_lat', ['category', 'lat'], unique=False)
    op.create_table('incident_public_codes',
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('created_at', api.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['incident_cases.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('code'),
    sa.UniqueConstraint('case_id')
    )
    op.create_table('notifications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=120), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=True),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', api.models.UTCDateTime(), nullable=False),
    sa.Column('read_at', api.models.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['incident_cases.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key')
    )
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notifications_case_id'), ['case_id'], unique=False)
        batch_op.create_index('ix_notifications_user_unread', ['username', 'read_at'], unique=False)

    op.create_table('notification_outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=140), nullable=False),
    sa.Column('notification_id', sa.Integer(), nullable=True),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('address', sa.String(length=200), nullable=True),
    sa.Column('template', sa.String(length=32), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', api.models.UTCDateTime(), nullable=False),
    sa.Column('next_attempt_at', api.models.UTCDateTime(), nullable=False),
    sa.Column('sent_at', api.models.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['notification_id'], ['notifications.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key')
    )
    with op.batch_alter_table('notification_outbox', schema=None) as batch_op:
        batch_op.create_index('ix_notification_outbox_due', ['status', 'next_attempt_at'], unique=False)


def downgrade() -> None:
    """Drop them."""
    with op.batch_alter_table('notification_outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_notification_outbox_due')
    op.drop_table('notification_outbox')
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_index('ix_notifications_user_unread')
        batch_op.drop_index(batch_op.f('ix_notifications_case_id'))
    op.drop_table('notifications')
    op.drop_table('incident_public_codes')
    with op.batch_alter_table('incident_cases', schema=None) as batch_op:
        batch_op.drop_index('ix_incident_cases_category_lat')
        batch_op.create_index('ix_incident_cases_category', ['category'], unique=False)
