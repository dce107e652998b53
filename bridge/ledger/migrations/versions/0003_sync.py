"""sync: webhook_events.source, the sync cursors, the per-provider sync status, payouts and their lines

Revision ID: 0003_sync
Revises: 0003_money
Create Date: 2026-12-01 08:45:00
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
import bridge.ledger.types


revision = '0003_sync'
down_revision = '0003_money'
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

    op.create_table('payouts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('provider', sa.String(length=16), nullable=False),
    sa.Column('payout_id', sa.String(length=255), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('arrival_date', bridge.ledger.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created', bridge.ledger.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('automatic', sa.Boolean(), nullable=False),
    sa.Column('itemized', sa.Boolean(), nullable=False),
    sa.Column('updated_at', bridge.ledger.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payouts')),
    sa.UniqueConstraint('provider', 'payout_id', name=op.f('uq_payouts_provider_payout_id'))
    )
    with op.batch_alter_table('payouts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payouts_created'), ['created'], unique=False)
    op.create_table('payout_lines',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('payout_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('provider_ref', sa.String(length=255), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('gross', sa.BigInteger(), nullable=False),
    sa.Column('fee', sa.BigInteger(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('original_amount', sa.BigInteger(), nullable=True),
    sa.Column('original_currency', sa.String(length=3), nullable=True),
    sa.Column('exchange_rate', sa.String(length=32), nullable=True),
    sa.Column('source_ref', sa.String(length=255), nullable=True),
    sa.ForeignKeyConstraint(['payout_pk'], ['payouts.id'], name=op.f('fk_payout_lines_payout_pk_payouts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payout_lines')),
    sa.UniqueConstraint('payout_pk', 'provider_ref', name=op.f('uq_payout_lines_payout_pk_provider_ref'))
    )
    with op.batch_alter_table('payout_lines', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payout_lines_source_ref'), ['source_ref'], unique=False)

    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.create_index('ix_ledger_entries_provider_provider_ref', ['provider', 'provider_ref'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_ledger_entries_provider_provider_ref')
    op.drop_table('payout_lines')
    op.drop_table('payouts')
    op.drop_table('sync_status')
    op.drop_table('sync_cursors')
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.drop_column('source')
