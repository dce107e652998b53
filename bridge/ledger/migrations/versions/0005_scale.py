"""row versions on orders and refund_requests: a write from a stale read fails

Under the per-order and per-customer locks (bridge/ledger/locks.py) two transactions about one
order never run at once; the version makes that hold even where a lock was missed: the ORM
updates these rows with ``WHERE version = <the version it read>`` and fails when another
transaction changed the row in between, instead of overwriting the newer state.

Revision ID: 0005_scale
Revises: 0004_payout_reference
"""
from alembic import op
import sqlalchemy as sa


revision = '0005_scale'
down_revision = '0004_payout_reference'
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ('orders', 'refund_requests'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('version', sa.Integer(), server_default='1', nullable=False))


def downgrade() -> None:
    for table in ('refund_requests', 'orders'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('version')
