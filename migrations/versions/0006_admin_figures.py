"""admin figures kept up to date: member figures and their group totals, the queue of changed
members filled by triggers, the ledger's monthly totals; tier history indexed by date

The admin overview and tier report read a few dozen group totals instead of every member and
a year of orders. The triggers queue a member whenever a member row or one of their orders
changes, whoever writes it; the admin's refresh recomputes just those members. The tables
start empty: the first admin page after the upgrade computes them (once per database).

Revision ID: 0006_admin_figures
Revises: 0005_recommender
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_admin_figures"
down_revision = "0005_recommender"
branch_labels = None
depends_on = None


TRIGGERS = {
    "sqlite": [
        "CREATE TRIGGER loyalty_admin_members_insert AFTER INSERT ON loyalty_members "
        "BEGIN INSERT INTO loyalty_admin_changes (member_id) VALUES (NEW.id); END",
        "CREATE TRIGGER loyalty_admin_members_update AFTER UPDATE OF tier_code, tier_reached_at, points_balance, "
        "points_pending, enrolled_at, erased_at ON loyalty_members "
        "BEGIN INSERT INTO loyalty_admin_changes (member_id) VALUES (NEW.id); END",
        "CREATE TRIGGER loyalty_admin_members_delete AFTER DELETE ON loyalty_members "
        "BEGIN INSERT INTO loyalty_admin_changes (member_id) VALUES (OLD.id); END",
        "CREATE TRIGGER loyalty_admin_orders_insert AFTER INSERT ON loyalty_orders WHEN NEW.member_id IS NOT NULL "
        "BEGIN INSERT INTO loyalty_admin_changes (member_id) VALUES (NEW.member_id); END",
        "CREATE TRIGGER loyalty_admin_orders_update AFTER UPDATE OF member_id, placed_at, total, shipping, tax, "
        "refunded_total ON loyalty_orders "
        "BEGIN INSERT INTO loyalty_admin_changes (member_id) SELECT NEW.member_id WHERE NEW.member_id IS NOT NULL "
        "UNION SELECT OLD.member_id WHERE OLD.member_id IS NOT NULL; END",
        "CREATE TRIGGER loyalty_admin_orders_delete AFTER DELETE ON loyalty_orders WHEN OLD.member_id IS NOT NULL "
        "BEGIN INSERT INTO loyalty_admin_changes (member_id) VALUES (OLD.member_id); END",
    ],
    "postgresql": [
        "CREATE OR REPLACE FUNCTION loyalty_admin_member_changed() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN IF TG_OP = 'DELETE' THEN INSERT INTO loyalty_admin_changes (member_id) VALUES (OLD.id); "
        "ELSE INSERT INTO loyalty_admin_changes (member_id) VALUES (NEW.id); END IF; RETURN NULL; END $$",
        "CREATE OR REPLACE FUNCTION loyalty_admin_order_changed() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN IF TG_OP <> 'DELETE' THEN IF NEW.member_id IS NOT NULL THEN "
        "INSERT INTO loyalty_admin_changes (member_id) VALUES (NEW.member_id); END IF; END IF; "
        "IF TG_OP = 'DELETE' THEN IF OLD.member_id IS NOT NULL THEN "
        "INSERT INTO loyalty_admin_changes (member_id) VALUES (OLD.member_id); END IF; "
        "ELSIF TG_OP = 'UPDATE' THEN IF OLD.member_id IS DISTINCT FROM NEW.member_id AND OLD.member_id IS NOT NULL "
        "THEN INSERT INTO loyalty_admin_changes (member_id) VALUES (OLD.member_id); END IF; END IF; "
        "RETURN NULL; END $$",
        "CREATE TRIGGER loyalty_admin_members AFTER INSERT OR DELETE OR UPDATE OF tier_code, tier_reached_at, "
        "points_balance, points_pending, enrolled_at, erased_at "
        "ON loyalty_members FOR EACH ROW EXECUTE PROCEDURE loyalty_admin_member_changed()",
        "CREATE TRIGGER loyalty_admin_orders AFTER INSERT OR DELETE OR UPDATE OF member_id, placed_at, total, "
        "shipping, tax, refunded_total "
        "ON loyalty_orders FOR EACH ROW EXECUTE PROCEDURE loyalty_admin_order_changed()",
    ],
}
DROP = {
    "sqlite": [
        f"DROP TRIGGER IF EXISTS loyalty_admin_{name}"
        for name in (
            "members_insert",
            "members_update",
            "members_delete",
            "orders_insert",
            "orders_update",
            "orders_delete",
        )
    ],
    "postgresql": [
        "DROP TRIGGER IF EXISTS loyalty_admin_members ON loyalty_members",
        "DROP TRIGGER IF EXISTS loyalty_admin_orders ON loyalty_orders",
        "DROP FUNCTION IF EXISTS loyalty_admin_member_changed()",
        "DROP FUNCTION IF EXISTS loyalty_admin_order_changed()",
    ],
}


def _id() -> sa.types.TypeEngine:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "loyalty_admin_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("settings", sa.String(length=64), nullable=False),
        sa.Column("ledger_folded_to", sa.BigInteger(), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loyalty_admin_state")),
    )
    op.create_table(
        "loyalty_admin_changes",
        sa.Column("id", _id(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loyalty_admin_changes")),
    )
    big = [
        "available",
        "pending",
        "orders",
        "paid",
        "kept",
        "cents",
        "recent",
        "period_orders",
        "period_paid",
        "period_kept",
    ]
    integer = {"orders", "recent", "period_orders"}
    op.create_table(
        "loyalty_admin_member_figures",
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("enrolled_month", sa.String(length=7), nullable=False),
        sa.Column("tier_code", sa.String(length=40), nullable=False),
        sa.Column("qualified", sa.Integer(), nullable=False),
        sa.Column("protected", sa.Boolean(), nullable=False),
        sa.Column("reach", sa.Boolean(), nullable=False),
        *[sa.Column(c, sa.Integer() if c in integer else sa.BigInteger(), nullable=False) for c in big],
        sa.Column("valid_from", sa.DateTime(), nullable=False),
        sa.Column("valid_until", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_loyalty_admin_member_figures")),
    )
    op.create_index(
        "ix_loyalty_admin_member_figures_valid_until", "loyalty_admin_member_figures", ["valid_until"], unique=False
    )
    op.create_index(
        "ix_loyalty_admin_member_figures_valid_from", "loyalty_admin_member_figures", ["valid_from"], unique=False
    )
    sums = [
        "members",
        "available",
        "pending",
        "buyers",
        "orders",
        "paid",
        "kept",
        "repeaters",
        "active",
        "period_buyers",
        "period_orders",
        "period_paid",
        "period_kept",
    ]
    op.create_table(
        "loyalty_admin_figure_totals",
        sa.Column("enrolled_month", sa.String(length=7), nullable=False),
        sa.Column("tier_code", sa.String(length=40), nullable=False),
        sa.Column("qualified", sa.Integer(), nullable=False),
        sa.Column("protected", sa.Boolean(), nullable=False),
        sa.Column("reach", sa.Boolean(), nullable=False),
        *[sa.Column(c, sa.BigInteger(), nullable=False) for c in sums],
        sa.PrimaryKeyConstraint(
            "enrolled_month",
            "tier_code",
            "qualified",
            "protected",
            "reach",
            name=op.f("pk_loyalty_admin_figure_totals"),
        ),
    )
    op.create_table(
        "loyalty_admin_ledger_months",
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("added", sa.BigInteger(), nullable=False),
        sa.Column("taken", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("month", "kind", name=op.f("pk_loyalty_admin_ledger_months")),
    )
    op.create_index(
        "ix_loyalty_tier_history_changed", "loyalty_tier_history", ["changed_at", "reason", "member_id"], unique=False
    )
    for statement in TRIGGERS.get(op.get_bind().dialect.name, []):
        op.execute(statement)


def downgrade() -> None:
    for statement in DROP.get(op.get_bind().dialect.name, []):
        op.execute(statement)
    op.drop_index("ix_loyalty_tier_history_changed", table_name="loyalty_tier_history")
    op.drop_table("loyalty_admin_ledger_months")
    op.drop_table("loyalty_admin_figure_totals")
    op.drop_index("ix_loyalty_admin_member_figures_valid_from", table_name="loyalty_admin_member_figures")
    op.drop_index("ix_loyalty_admin_member_figures_valid_until", table_name="loyalty_admin_member_figures")
    op.drop_table("loyalty_admin_member_figures")
    op.drop_table("loyalty_admin_changes")
    op.drop_table("loyalty_admin_state")
