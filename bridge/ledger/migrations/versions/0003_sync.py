"""sync: webhook_events.source, the sync cursors and the per-provider sync status

Revision ID: 0003_sync
Revises: 0002
Create Date: 2026-12-01 08:45:00
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
import bridge.ledger.types


revision = '0003_sync'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('source', sa.String(length=16), server_default='webhook', nullable=False))
    op.create_table('sync_cursors',
    sa.Column('provider', sa.String(length=16), nullable=False),
    sa.Column('stream', sa.String(length=64), nullable=False),
    sa.Column('position', sa.String(length=1024), nullable=True),
    sa.Column('lower', bridge.ledger.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('upper', bridge.ledger.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('resume', sa.String(length=1024), nullable=True),
    sa.Column('watermark', bridge.ledger.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', bridge.ledger.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('provider', 'stream', name=op.f('pk_sync_cursors'))
    )
    op.create_table('sync_status',
    sa.Column('provider', sa.String(length=16), nullable=False),
    sa.Column('last_started_at', bridge.ledger.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_success_at', bridge.ledger.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('last_result', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('lease_owner', sa.String(length=128), nullable=True),
    sa.Column('lease_until', bridge.ledger.types.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('provider', name=op.f('pk_sync_status'))
    )


def downgrade() -> None:
    op.drop_table('sync_status')
    op.drop_table('sync_cursors')
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.drop_column('source')
