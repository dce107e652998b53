"""console: which orders each webhook event touched (an order's story), and the indexes the
console's search, failed-work and month pages read

Revision ID: 0003_console
Revises: 0002
Create Date: 2026-12-01 08:15:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0003_console'
down_revision = '0002'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('event_orders',
    sa.Column('event_pk', _ID, nullable=False),
    sa.Column('order_pk', _ID, nullable=False),
    sa.ForeignKeyConstraint(['event_pk'], ['webhook_events.id'], name=op.f('fk_event_orders_event_pk_webhook_events'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['order_pk'], ['orders.id'], name=op.f('fk_event_orders_order_pk_orders'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('event_pk', 'order_pk', name=op.f('pk_event_orders'))
    )
    with op.batch_alter_table('event_orders', schema=None) as batch_op:
        batch_op.create_index('ix_event_orders_order_pk', ['order_pk'], unique=False)
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.create_index('ix_orders_customer_email', ['customer_email'], unique=False)
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.create_index('ix_webhook_events_status', ['status'], unique=False)
    # Reconciliation's per-period payment queries (the month page's discrepancies).
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.create_index('ix_payments_paid_at', ['paid_at'], unique=False)
    # An order's ledger movements, newest first (the order page), by index.
    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.create_index('ix_ledger_entries_order_pk_occurred_at', ['order_pk', 'occurred_at', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_ledger_entries_order_pk_occurred_at')
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_index('ix_payments_paid_at')
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.drop_index('ix_webhook_events_status')
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index('ix_orders_customer_email')
    with op.batch_alter_table('event_orders', schema=None) as batch_op:
        batch_op.drop_index('ix_event_orders_order_pk')
    op.drop_table('event_orders')
