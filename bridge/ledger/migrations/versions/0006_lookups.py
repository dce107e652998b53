"""indexes for the worker's look-ups that otherwise read a whole table per event

Found with bench/worker_bench.py --history (a merchant's past in the tables): the database's
CPU per event doubled at 20,000 past orders, from three statements that scanned:
- a ledger entry's corrections (``corrects``, no index: every entry read);
- a customer's other payments, for duplicate charges (every payment line read);
- the claim of due jobs, which sorted every ready job to take the first few: ``id`` is now in
  the index, so the (run_at, id) order is read off it.

Revision ID: 0006_lookups
Revises: 0005_scale
"""
from alembic import op


revision = '0006_lookups'
down_revision = '0005_scale'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_ledger_entries_corrects', 'ledger_entries', ['corrects'])
    op.create_index('ix_payments_provider_customer_ref', 'payments', ['provider', 'customer_ref'])
    op.create_index('ix_jobs_state_run_at_id', 'jobs', ['state', 'run_at', 'id'])
    op.drop_index('ix_jobs_state_run_at', table_name='jobs')


def downgrade() -> None:
    op.create_index('ix_jobs_state_run_at', 'jobs', ['state', 'run_at'])
    op.drop_index('ix_jobs_state_run_at_id', table_name='jobs')
    op.drop_index('ix_payments_provider_customer_ref', table_name='payments')
    op.drop_index('ix_ledger_entries_corrects', table_name='ledger_entries')
