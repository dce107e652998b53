"""a license remembers its last notice; a Paddle adjustment's case found by index; a ledger index
that another one covers is dropped

Writing a license's notice read the license's notices twice: the highest sequence number (to
number the next one) and the last notice's id and type (to say the license's status again when a
late event changed it). ``licenses.seq`` (until now always 0) is the sequence number of the
license's last notice, and ``last_notice_id`` / ``last_notice_type`` name it; they are written with
the notice. The existing licenses are filled from their notices.

A Paddle adjustment's case (``disputes._case_key``) was found by reading every dispute of the
provider: by the adjustment that charged it back or reversed it, and by the transaction's open
chargebacks. Each has its index now.

``ix_ledger_entries_order_pk`` is the first column of ``ix_ledger_entries_order_pk_occurred_at``
(0003): every look-up by order, and the foreign key's checks, use the wider one; the narrow one
only cost every new entry an index insertion.

Revision ID: 0007_license_notices
Revises: 0006_lookups
"""
from alembic import op
import sqlalchemy as sa


revision = '0007_license_notices'
down_revision = '0006_lookups'
branch_labels = None
depends_on = None

_LAST = ("(SELECT m.{col} FROM outbound_messages m WHERE m.license_id = licenses.license_id "
         "ORDER BY m.seq DESC LIMIT 1)")


def upgrade() -> None:
    with op.batch_alter_table('licenses', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_notice_id', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('last_notice_type', sa.String(length=64), nullable=True))
    op.execute("UPDATE licenses SET seq = coalesce(" + _LAST.format(col="seq") + ", 0), "
               "last_notice_id = " + _LAST.format(col="id") + ", last_notice_type = " + _LAST.format(col="type"))
    with op.batch_alter_table('disputes', schema=None) as batch_op:
        batch_op.create_index('ix_disputes_provider_adjustment_id', ['provider', 'adjustment_id'], unique=False)
        batch_op.create_index('ix_disputes_provider_reversed_by', ['provider', 'reversed_by'], unique=False)
        batch_op.create_index('ix_disputes_provider_transaction_id', ['provider', 'transaction_id'], unique=False)
    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_ledger_entries_order_pk')


def downgrade() -> None:
    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.create_index('ix_ledger_entries_order_pk', ['order_pk'], unique=False)
    with op.batch_alter_table('disputes', schema=None) as batch_op:
        batch_op.drop_index('ix_disputes_provider_transaction_id')
        batch_op.drop_index('ix_disputes_provider_reversed_by')
        batch_op.drop_index('ix_disputes_provider_adjustment_id')
    with op.batch_alter_table('licenses', schema=None) as batch_op:
        batch_op.drop_column('last_notice_type')
        batch_op.drop_column('last_notice_id')
