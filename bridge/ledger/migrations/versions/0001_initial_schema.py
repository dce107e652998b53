"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-22 07:08:09.976792
"""
from alembic import op
import sqlalchemy as sa
import bridge.ledger.types
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('api_tokens',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('scopes', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', bridge.ledger.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', bridge.ledger.types.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_tokens_token_hash'))
    )
    op.create_table('jobs',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('ref_id', sa.String(length=255), nullable=False),
    sa.Column('dedupe_key', sa.String(length=255), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('run_at', bridge.ledger.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('max_attempts', sa.Integer(), nullable=False),
    sa.Column('locked_by', sa.String(length=128), nullable=True),
    sa.Column('lease_token', sa.String(length=64), nullable=True),
    sa.Column('locked_until', bridge.ledger.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', bridge.ledger.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', bridge.ledger.types.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_jobs')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_jobs_dedupe_key'))
    )
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.create_index('ix_jobs_state_run_at', ['state', 'run_at'], unique=False)

    op.create_table('orders',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('order_id', sa.String(length=255), nullable=False),
    sa.Column('policy', sa.String(length=64), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('bundle', sa.Boolean(), nullable=False),
    sa.Column('customer_id', sa.String(length=255), nullable=True),
    sa.Column('customer_email', sa.String(length=320), nullable=True),
    sa.Column('customer_country', sa.String(length=2), nullable=True),
    sa.Column('customer_business', sa.Boolean(), nullable=False),
    sa.Column('facts', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('created_at', bridge.ledger.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', bridge.ledger.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_orders')),
    sa.UniqueConstraint('order_id', name=op.f('uq_orders_order_id'))
    )
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_orders_customer_id'), ['customer_id'], unique=False)

    op.create_table('outbound_messages',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('license_id', sa.String(length=255), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('type', sa.String(length=64), nullable=False),
    sa.Column('body', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', bridge.ledger.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('delivered_at', bridge.ledger.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbound_messages')),
    sa.UniqueConstraint('license_id', 'seq', name=op.f('uq_outbound_messages_license_id_seq'))
    )
    with op.batch_alter_table('outbound_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbound_messages_license_id'), ['license_id'], unique=False)

    op.create_table('webhook_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('provider', sa.String(length=16), nullable=False),
    sa.Column('provider_event_id', sa.String(length=255), nullable=False),
    sa.Column('event_type', sa.String(length=128), nullable=False),
    sa.Column('body', sa.LargeBinary(), nullable=False),
    sa.Column('headers', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('received_at', bridge.ledger.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('occurred_at', bridge.ledger.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('processed_at', bridge.ledger.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_events')),
    sa.UniqueConstraint('provider', 'provider_event_id', name=op.f('uq_webhook_events_provider_provider_event_id'))
    )
    op.create_table('licenses',
    sa.Column('license_id', sa.String(length=255), nullable=False),
    sa.Column('order_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('item_id', sa.String(length=255), nullable=False),
    sa.Column('customer_id', sa.String(length=255), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=255), nullable=True),
    sa.Column('changed_at', bridge.ledger.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', bridge.ledger.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked', sa.Boolean(), nullable=False),
    sa.Column('holds', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['order_pk'], ['orders.id'], name=op.f('fk_licenses_order_pk_orders')),
    sa.PrimaryKeyConstraint('license_id', name=op.f('pk_licenses'))
    )
    with op.batch_alter_table('licenses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_licenses_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_licenses_order_pk'), ['order_pk'], unique=False)

    op.create_table('order_items',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('order_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('item_id', sa.String(length=255), nullable=False),
    sa.Column('sku', sa.String(length=255), nullable=True),
    sa.Column('category', sa.String(length=64), nullable=True),
    sa.Column('billing', sa.String(length=16), nullable=True),
    sa.Column('amount', sa.BigInteger(), nullable=True),
    sa.Column('price_id', sa.String(length=255), nullable=True),
    sa.Column('product_id', sa.String(length=255), nullable=True),
    sa.Column('license_id', sa.String(length=255), nullable=True),
    sa.Column('facts', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.ForeignKeyConstraint(['order_pk'], ['orders.id'], name=op.f('fk_order_items_order_pk_orders'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_order_items')),
    sa.UniqueConstraint('order_pk', 'item_id', name=op.f('uq_order_items_order_pk_item_id'))
    )
    with op.batch_alter_table('order_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_order_items_order_pk'), ['order_pk'], unique=False)

    op.create_table('payments',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('provider', sa.String(length=16), nullable=False),
    sa.Column('order_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('order_ref', sa.String(length=255), nullable=True),
    sa.Column('customer_ref', sa.String(length=255), nullable=True),
    sa.Column('amount', sa.BigInteger(), nullable=True),
    sa.Column('tax', sa.BigInteger(), nullable=True),
    sa.Column('fee', sa.BigInteger(), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('paid_at', bridge.ledger.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('purchase', sa.String(length=16), nullable=True),
    sa.Column('period_start', bridge.ledger.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('period_end', bridge.ledger.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('transaction_id', sa.String(length=255), nullable=True),
    sa.Column('charge_id', sa.String(length=255), nullable=True),
    sa.Column('payment_intent_id', sa.String(length=255), nullable=True),
    sa.Column('invoice_id', sa.String(length=255), nullable=True),
    sa.Column('checkout_session_id', sa.String(length=255), nullable=True),
    sa.Column('subscription_id', sa.String(length=255), nullable=True),
    sa.Column('balance_transaction_id', sa.String(length=255), nullable=True),
    sa.Column('duplicate_of', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('captured', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', bridge.ledger.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', bridge.ledger.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['duplicate_of'], ['payments.id'], name=op.f('fk_payments_duplicate_of_payments')),
    sa.ForeignKeyConstraint(['order_pk'], ['orders.id'], name=op.f('fk_payments_order_pk_orders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payments')),
    sa.UniqueConstraint('provider', 'charge_id', name=op.f('uq_payments_provider_charge_id')),
    sa.UniqueConstraint('provider', 'checkout_session_id', name=op.f('uq_payments_provider_checkout_session_id')),
    sa.UniqueConstraint('provider', 'invoice_id', name=op.f('uq_payments_provider_invoice_id')),
    sa.UniqueConstraint('provider', 'payment_intent_id', name=op.f('uq_payments_provider_payment_intent_id')),
    sa.UniqueConstraint('provider', 'transaction_id', name=op.f('uq_payments_provider_transaction_id'))
    )
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payments_order_pk'), ['order_pk'], unique=False)
        batch_op.create_index(batch_op.f('ix_payments_subscription_id'), ['subscription_id'], unique=False)

    op.create_table('refund_requests',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('order_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('idempotency_key', sa.String(length=255), nullable=True),
    sa.Column('request_hash', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=64), nullable=False),
    sa.Column('items', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('requested_at', bridge.ledger.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('facts', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('item_facts', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('decision', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('refund_amount', sa.BigInteger(), nullable=False),
    sa.Column('fee_deducted', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('policy_id', sa.String(length=64), nullable=True),
    sa.Column('policy_version', sa.String(length=32), nullable=True),
    sa.Column('policy_hash', sa.String(length=64), nullable=True),
    sa.Column('review', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('error_code', sa.String(length=128), nullable=True),
    sa.Column('error_detail', sa.Text(), nullable=True),
    sa.Column('created_at', bridge.ledger.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', bridge.ledger.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['order_pk'], ['orders.id'], name=op.f('fk_refund_requests_order_pk_orders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_refund_requests')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_refund_requests_idempotency_key'))
    )
    with op.batch_alter_table('refund_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_refund_requests_order_pk'), ['order_pk'], unique=False)
        batch_op.create_index(batch_op.f('ix_refund_requests_status'), ['status'], unique=False)

    op.create_table('disputes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('provider', sa.String(length=16), nullable=False),
    sa.Column('provider_dispute_id', sa.String(length=255), nullable=False),
    sa.Column('payment_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('order_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('reason', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('provider_status', sa.String(length=64), nullable=True),
    sa.Column('status_at', bridge.ledger.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('evidence_due_by', bridge.ledger.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('funds_withdrawn', sa.BigInteger(), nullable=False),
    sa.Column('funds_reinstated', sa.BigInteger(), nullable=False),
    sa.Column('fee', sa.BigInteger(), nullable=False),
    sa.Column('restriction', sa.String(length=32), nullable=True),
    sa.Column('transaction_id', sa.String(length=255), nullable=True),
    sa.Column('charge_id', sa.String(length=255), nullable=True),
    sa.Column('payment_intent_id', sa.String(length=255), nullable=True),
    sa.Column('opened_at', bridge.ledger.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_at', bridge.ledger.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', bridge.ledger.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['order_pk'], ['orders.id'], name=op.f('fk_disputes_order_pk_orders')),
    sa.ForeignKeyConstraint(['payment_pk'], ['payments.id'], name=op.f('fk_disputes_payment_pk_payments')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_disputes')),
    sa.UniqueConstraint('provider', 'provider_dispute_id', name=op.f('uq_disputes_provider_provider_dispute_id'))
    )
    with op.batch_alter_table('disputes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_disputes_order_pk'), ['order_pk'], unique=False)
        batch_op.create_index(batch_op.f('ix_disputes_payment_pk'), ['payment_pk'], unique=False)

    op.create_table('ledger_entries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('provider', sa.String(length=16), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('order_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('payment_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('occurred_at', bridge.ledger.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('provider_ref', sa.String(length=255), nullable=True),
    sa.Column('effect_key', sa.String(length=255), nullable=False),
    sa.Column('corrects', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', bridge.ledger.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['corrects'], ['ledger_entries.id'], name=op.f('fk_ledger_entries_corrects_ledger_entries')),
    sa.ForeignKeyConstraint(['order_pk'], ['orders.id'], name=op.f('fk_ledger_entries_order_pk_orders')),
    sa.ForeignKeyConstraint(['payment_pk'], ['payments.id'], name=op.f('fk_ledger_entries_payment_pk_payments')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_entries')),
    sa.UniqueConstraint('effect_key', name=op.f('uq_ledger_entries_effect_key'))
    )
    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ledger_entries_occurred_at'), ['occurred_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_ledger_entries_order_pk'), ['order_pk'], unique=False)
        batch_op.create_index(batch_op.f('ix_ledger_entries_payment_pk'), ['payment_pk'], unique=False)

    op.create_table('payment_items',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('payment_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('order_item_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('provider_item_id', sa.String(length=255), nullable=True),
    sa.Column('price_id', sa.String(length=255), nullable=True),
    sa.Column('product_id', sa.String(length=255), nullable=True),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('tax', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['order_item_pk'], ['order_items.id'], name=op.f('fk_payment_items_order_item_pk_order_items')),
    sa.ForeignKeyConstraint(['payment_pk'], ['payments.id'], name=op.f('fk_payment_items_payment_pk_payments'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_items'))
    )
    with op.batch_alter_table('payment_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payment_items_payment_pk'), ['payment_pk'], unique=False)

    op.create_table('refunds',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('provider', sa.String(length=16), nullable=False),
    sa.Column('provider_refund_id', sa.String(length=255), nullable=True),
    sa.Column('payment_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('refund_request_id', sa.String(length=64), nullable=True),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('status_at', bridge.ledger.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('succeeded_at', bridge.ledger.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('submitted_at', bridge.ledger.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('reason', sa.String(length=255), nullable=True),
    sa.Column('failure_reason', sa.String(length=255), nullable=True),
    sa.Column('items', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('transaction_id', sa.String(length=255), nullable=True),
    sa.Column('charge_id', sa.String(length=255), nullable=True),
    sa.Column('payment_intent_id', sa.String(length=255), nullable=True),
    sa.Column('created_at', bridge.ledger.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', bridge.ledger.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['payment_pk'], ['payments.id'], name=op.f('fk_refunds_payment_pk_payments')),
    sa.ForeignKeyConstraint(['refund_request_id'], ['refund_requests.id'], name=op.f('fk_refunds_refund_request_id_refund_requests')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_refunds')),
    sa.UniqueConstraint('provider', 'provider_refund_id', name=op.f('uq_refunds_provider_provider_refund_id'))
    )
    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_refunds_payment_pk'), ['payment_pk'], unique=False)
        batch_op.create_index(batch_op.f('ix_refunds_refund_request_id'), ['refund_request_id'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_refunds_refund_request_id'))
        batch_op.drop_index(batch_op.f('ix_refunds_payment_pk'))

    op.drop_table('refunds')
    with op.batch_alter_table('payment_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payment_items_payment_pk'))

    op.drop_table('payment_items')
    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ledger_entries_payment_pk'))
        batch_op.drop_index(batch_op.f('ix_ledger_entries_order_pk'))
        batch_op.drop_index(batch_op.f('ix_ledger_entries_occurred_at'))

    op.drop_table('ledger_entries')
    with op.batch_alter_table('disputes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_disputes_payment_pk'))
        batch_op.drop_index(batch_op.f('ix_disputes_order_pk'))

    op.drop_table('disputes')
    with op.batch_alter_table('refund_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_refund_requests_status'))
        batch_op.drop_index(batch_op.f('ix_refund_requests_order_pk'))

    op.drop_table('refund_requests')
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payments_subscription_id'))
        batch_op.drop_index(batch_op.f('ix_payments_order_pk'))

    op.drop_table('payments')
    with op.batch_alter_table('order_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_order_items_order_pk'))

    op.drop_table('order_items')
    with op.batch_alter_table('licenses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_licenses_order_pk'))
        batch_op.drop_index(batch_op.f('ix_licenses_customer_id'))

    op.drop_table('licenses')
    op.drop_table('webhook_events')
    with op.batch_alter_table('outbound_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbound_messages_license_id'))

    op.drop_table('outbound_messages')
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_orders_customer_id'))

    op.drop_table('orders')
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_jobs_state_run_at')

    op.drop_table('jobs')
    op.drop_table('api_tokens')

