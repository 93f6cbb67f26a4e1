"""patrol visits: an optional photo (file under the instance folder) with its content type

Revision ID: 0011_patrol_visit_photo
Revises: 0010_snapshot_parts
Create Date: 2026-12-06 14:20:00

"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision: str = '0011_patrol_visit_photo'
down_revision: Union[str, Sequence[str], None] = '0010_snapshot_parts'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """A visit may carry the worker's photo (path relative to the instance's patrol photo folder)."""
    with op.batch_alter_table('patrol_visits', schema=None) as batch_op:
        batch_op.add_column(sa.Column('photo_path', sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column('photo_type', sa.String(length=50), nullable=True))


def downgrade() -> None:
    """Drop the photo columns (the files stay in the instance folder)."""
    with op.batch_alter_table('patrol_visits', schema=None) as batch_op:
        batch_op.drop_column('photo_type')
        batch_op.drop_column('photo_path')
