"""plan versions record the workspace version (import run) they were made from (issue 16 §4)

Revision ID: 0003_plan_workspace
Revises: 0002
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0003_plan_workspace'
down_revision: Union[str, Sequence[str], None] = '0002'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Add plan_versions.workspace_version; existing plans are stamped with the newest import."""
    with op.batch_alter_table('plan_versions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('workspace_version', sa.Integer(), nullable=True))
    # the best knowledge about older plans: they were made from the workspace as it is now
    op.execute("UPDATE plan_versions SET workspace_version = "
               "(SELECT max(id) FROM import_runs WHERE status = 'success')")


def downgrade() -> None:
    """Drop plan_versions.workspace_version."""
    with op.batch_alter_table('plan_versions', schema=None) as batch_op:
        batch_op.drop_column('workspace_version')
