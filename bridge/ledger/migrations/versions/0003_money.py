"""money: the constraints the code relies on, in the schema; the ledger append-only

Revision ID: 0003_money
Revises: 0003_console
Create Date: 2026-12-01 08:30:00

- unique license per (order, item); unique provider refund per (refund request, payment)
  (unique indexes: SQLite can add those without rebuilding a table);
- CHECK constraints on statuses, on ledger kinds and on amounts that cannot be negative. On
  PostgreSQL real CHECK constraints; SQLite cannot add one to an existing table without
  rebuilding it (and rebuilding ``payments`` with foreign keys on would cascade-delete its
  lines), so there the same conditions are BEFORE INSERT/UPDATE triggers that abort;
- ``ledger_entries`` append-only: a trigger refuses any change of its money columns, any move
  of its order link other than filling an empty one, and any delete;
- ``webhook_events.order_ref``: the order a held event concerned (reconciliation reports it);
  ``payments.match_note``: why a payment could not be matched (an order reference that is no id);
  ``disputes.adjustment_id``/``reversed_by``: Paddle chargebacks are cases of their own.

Existing rows that break a new constraint stop the upgrade with a message naming the
constraint and how many rows break it: money data is never deleted or rewritten to fit.
"""
from alembic import op
import sqlalchemy as sa


revision = '0003_money'
down_revision = '0003_console'
branch_labels = None
depends_on = None

WEBHOOK_STATUSES = ("received", "processed", "ignored", "parked", "failed", "held")
LEDGER_KINDS = ("sale", "fee", "refund", "refund_reversal", "chargeback", "chargeback_fee", "chargeback_reversal",
                "chargeback_fee_reversal")


def _in(col, values):
    return lambda p="": f"{p}{col} IN ({', '.join(repr(v) for v in values)})"


def _nonneg(*cols):
    return lambda p="": " AND ".join(f"({p}{c} IS NULL OR {p}{c} >= 0)" for c in cols)


# (table, name as in models.py, condition given a column prefix: "" in a CHECK, "NEW." in a
# trigger). Names follow the naming convention ck_<table>_<name>.
CHECKS = [
    ("webhook_events", "status", _in("status", WEBHOOK_STATUSES)),
    ("jobs", "state", _in("state", ("ready", "running", "done", "dead"))),
    ("jobs", "attempts", _nonneg("attempts", "max_attempts")),
    ("orders", "status", _in("status", ("awaiting_payment", "paid", "partially_refunded", "refunded", "disputed",
                                        "charged_back"))),
    ("orders", "source", _in("source", ("api", "provider"))),
    ("order_items", "amount", _nonneg("amount")),
    ("payments", "status", _in("status", ("succeeded",))),
    ("payments", "amounts", _nonneg("amount", "tax", "fee")),
    ("refund_requests", "status", _in("status", ("approved", "denied", "review", "refunding", "refunded", "failed"))),
    ("refund_requests", "amounts", _nonneg("refund_amount", "fee_deducted")),
    ("refunds", "status", _in("status", ("pending", "succeeded", "failed", "canceled"))),
    ("refunds", "amount", _nonneg("amount")),
    ("disputes", "status", _in("status", ("warning", "open", "won", "lost"))),
    ("disputes", "amounts", _nonneg("amount", "funds_withdrawn", "funds_reinstated", "fee")),
    ("ledger_entries", "kind", _in("kind", LEDGER_KINDS)),
    ("licenses", "status", _in("status", ("active", "suspended", "revoked", "expired"))),
]

UNIQUES = [
    ("licenses", "uq_licenses_order_pk_item_id", ("order_pk", "item_id")),
    ("refunds", "uq_refunds_refund_request_id_payment_pk", ("refund_request_id", "payment_pk")),
]

# Columns of a ledger entry fixed at insert (bridge/ledger/append_only.py says why).
FROZEN = ("provider", "kind", "amount", "currency", "occurred_at", "effect_key", "provider_ref", "corrects",
          "created_at")


def _refuse_violations(conn) -> None:
    problems = []
    for table, name, cond in CHECKS:
        n = conn.execute(sa.text(f"SELECT count(*) FROM {table} WHERE NOT ({cond()})")).scalar()
        if n:
            problems.append(f"ck_{table}_{name}: {n} row(s) of {table}")
    for table, name, cols in UNIQUES:
        where = " AND ".join(f"{c} IS NOT NULL" for c in cols)
        n = conn.execute(sa.text(f"SELECT count(*) FROM (SELECT 1 FROM {table} WHERE {where} GROUP BY "
                                 f"{', '.join(cols)} HAVING count(*) > 1) AS d")).scalar()
        if n:
            problems.append(f"{name}: {n} duplicated ({', '.join(cols)}) in {table}")
    if problems:
        raise RuntimeError("cannot add the constraints of migration 0003_money; fix these rows first: "
                           + "; ".join(problems))


def upgrade() -> None:
    conn = op.get_bind()
    sqlite = conn.dialect.name == "sqlite"
    op.add_column("webhook_events", sa.Column("order_ref", sa.String(length=255), nullable=True))
    op.add_column("payments", sa.Column("match_note", sa.String(length=255), nullable=True))
    op.add_column("disputes", sa.Column("adjustment_id", sa.String(length=255), nullable=True))
    op.add_column("disputes", sa.Column("reversed_by", sa.String(length=255), nullable=True))
    _refuse_violations(conn)
    for table, name, cols in UNIQUES:
        op.create_index(name, table, list(cols), unique=True)
    if sqlite:
        for table, name, cond in CHECKS:
            for when in ("INSERT", "UPDATE"):
                op.execute(f"CREATE TRIGGER ck_{table}_{name}_{when.lower()} BEFORE {when} ON {table} "
                           f"WHEN NOT ({cond('NEW.')}) "
                           f"BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: ck_{table}_{name}'); END")
        changed = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in FROZEN)
        op.execute("CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE ON ledger_entries "
                   f"WHEN {changed} OR (OLD.order_pk IS NOT NULL AND NEW.order_pk IS NOT OLD.order_pk) "
                   "BEGIN SELECT RAISE(ABORT, 'ledger_entries are append-only'); END")
        op.execute("CREATE TRIGGER ledger_entries_no_delete BEFORE DELETE ON ledger_entries "
                   "BEGIN SELECT RAISE(ABORT, 'ledger_entries are append-only'); END")
        return
    for table, name, cond in CHECKS:
        op.create_check_constraint(op.f(f"ck_{table}_{name}"), table, sa.text(cond()))
    changed = " OR ".join(f"NEW.{c} IS DISTINCT FROM OLD.{c}" for c in FROZEN)
    op.execute(f"""
CREATE FUNCTION ledger_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'ledger_entries are append-only: entry % cannot be deleted', OLD.id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF {changed} OR (OLD.order_pk IS NOT NULL AND NEW.order_pk IS DISTINCT FROM OLD.order_pk) THEN
        RAISE EXCEPTION 'ledger_entries are append-only: entry % cannot change', OLD.id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END $$""")
    op.execute("CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries "
               "FOR EACH ROW EXECUTE FUNCTION ledger_entries_append_only()")


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS ledger_entries_append_only")
        op.execute("DROP TRIGGER IF EXISTS ledger_entries_no_delete")
        for table, name, _cond in CHECKS:
            for when in ("insert", "update"):
                op.execute(f"DROP TRIGGER IF EXISTS ck_{table}_{name}_{when}")
    else:
        op.execute("DROP TRIGGER IF EXISTS ledger_entries_append_only ON ledger_entries")
        op.execute("DROP FUNCTION IF EXISTS ledger_entries_append_only()")
        for table, name, _cond in CHECKS:
            op.drop_constraint(op.f(f"ck_{table}_{name}"), table, type_="check")
    for table, name, _cols in UNIQUES:
        op.drop_index(name, table_name=table)
    with op.batch_alter_table("webhook_events") as batch_op:
        batch_op.drop_column("order_ref")
    with op.batch_alter_table("payments") as batch_op:
        batch_op.drop_column("match_note")
    with op.batch_alter_table("disputes") as batch_op:
        batch_op.drop_column("adjustment_id")
        batch_op.drop_column("reversed_by")
