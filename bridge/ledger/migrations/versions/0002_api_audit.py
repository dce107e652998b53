"""api audit: one metadata-only row per /api/v1 call, indexed for the per-IP failure throttle

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 10:19:36.350590
"""
from alembic import op
import sqlalchemy as sa
import bridge.ledger.types


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('api_audit',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('created_at', bridge.ledger.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('client_ip', sa.String(length=64), nullable=False),
    sa.Column('method', sa.String(length=16), nullable=False),
    sa.Column('path', sa.String(length=512), nullable=False),
    sa.Column('status', sa.Integer(), nullable=False),
    sa.Column('token_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('scope', sa.String(length=32), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_audit'))
    )
    with op.batch_alter_table('api_audit', schema=None) as batch_op:
        batch_op.create_index('ix_api_audit_client_ip_status_created_at', ['client_ip', 'status', 'created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('api_audit', schema=None) as batch_op:
        batch_op.drop_index('ix_api_audit_client_ip_status_created_at')

    op.drop_table('api_audit')
