"""payouts.reference: the provider's reference of a payout on its remittance advice (Paddle's
``remittance_reference``, what its payout reconciliation report is asked for by)

Revision ID: 0004_payout_reference
Revises: 0003_sync
Create Date: 2026-12-01 11:50:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0004_payout_reference'
down_revision = '0003_sync'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('payouts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reference', sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('payouts', schema=None) as batch_op:
        batch_op.drop_column('reference')
