"""incidents: a covering (grid_code, state, due_at, …) index for the metrics and the map by grid; the unused community_id index goes

Revision ID: 0008_incident_bulk
Revises: 0007_incident_notify
Create Date: 2026-12-06 10:40:00

"""
from typing import Sequence, Union

from alembic import op


# revision identifiers, used by Alembic.
revision: str = '0008_incident_bulk'
down_revision: Union[str, Sequence[str], None] = '0007_incident_notify'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_METRICS = ['grid_code', 'state', 'due_at', 'closed_at', 'dispatched_at', 'rework_count', 'extension_count']


def upgrade() -> None:
    """Metrics by grid and the map's open cases per grid read one covering index (its grid_code prefix serves the grid filters the old
    index served); nothing filters cases by community, so that index only cost bulk loads."""
    with op.batch_alter_table('incident_cases', schema=None) as batch_op:
        batch_op.drop_index('ix_incident_cases_grid_code')
        batch_op.drop_index('ix_incident_cases_community_id')
        batch_op.create_index('ix_incident_cases_grid_metrics', _METRICS, unique=False)


def downgrade() -> None:
    """Back to the single-column grid_code and community_id indexes."""
    with op.batch_alter_table('incident_cases', schema=None) as batch_op:
        batch_op.drop_index('ix_incident_cases_grid_metrics')
        batch_op.create_index('ix_incident_cases_community_id', ['community_id'], unique=False)
        batch_op.create_index('ix_incident_cases_grid_code', ['grid_code'], unique=False)
