"""job runs and locks, member scores and segments, model reports, churn alerts, expiry warnings

Revision ID: 0003_jobs_and_analytics
Revises: 0002_index_orders_member
"""

import sqlalchemy as sa
from alembic import op


revision = "0003_jobs_and_analytics"
down_revision = "0002_index_orders_member"
branch_labels = None
depends_on = None

OPEN = sa.text("status = 'open'")


def upgrade() -> None:
    with op.batch_alter_table("loyalty_point_lots") as batch_op:
        batch_op.add_column(sa.Column("warned_at", sa.DateTime(), nullable=True))
    op.create_table(
        "loyalty_job_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job", sa.String(length=40), nullable=False),
        sa.Column("scheduled_for", sa.DateTime(), nullable=False),
        sa.Column("trigger", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("worker", sa.String(length=255), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("counts", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loyalty_job_runs")),
        sa.UniqueConstraint("job", "scheduled_for", name=op.f("uq_loyalty_job_runs_job")),
    )
    op.create_index("ix_loyalty_job_runs_job_status", "loyalty_job_runs", ["job", "status"])
    op.create_table(
        "loyalty_job_locks",
        sa.Column("job", sa.String(length=40), nullable=False),
        sa.Column("holder", sa.String(length=255), nullable=True),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("job", name=op.f("pk_loyalty_job_locks")),
    )
    op.create_table(
        "loyalty_member_scores",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("scored_on", sa.Date(), nullable=False),
        sa.Column("churn_risk", sa.Float(), nullable=True),
        sa.Column("risk_source", sa.String(length=200), nullable=False),
        sa.Column("p_alive", sa.Float(), nullable=True),
        sa.Column("expected_orders", sa.Float(), nullable=True),
        sa.Column("expected_spend", sa.BigInteger(), nullable=True),
        sa.Column("clv", sa.BigInteger(), nullable=True),
        sa.Column("recency_days", sa.Integer(), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("spend", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["loyalty_members.id"], name=op.f("fk_loyalty_member_scores_member_id_loyalty_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loyalty_member_scores")),
        sa.UniqueConstraint("member_id", "scored_on", name=op.f("uq_loyalty_member_scores_member_id")),
    )
    op.create_index("ix_loyalty_member_scores_day", "loyalty_member_scores", ["scored_on"])
    op.create_table(
        "loyalty_member_segments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("computed_on", sa.Date(), nullable=False),
        sa.Column("segment", sa.String(length=100), nullable=False),
        sa.Column("scores", sa.String(length=20), nullable=True),
        sa.ForeignKeyConstraint(
            ["member_id"], ["loyalty_members.id"], name=op.f("fk_loyalty_member_segments_member_id_loyalty_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loyalty_member_segments")),
        sa.UniqueConstraint("member_id", "kind", "computed_on", name=op.f("uq_loyalty_member_segments_member_id")),
    )
    op.create_index("ix_loyalty_member_segments_day", "loyalty_member_segments", ["kind", "computed_on"])
    op.create_table(
        "loyalty_model_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=40), nullable=False),
        sa.Column("fitted_on", sa.Date(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loyalty_model_reports")),
        sa.UniqueConstraint("model", "fitted_on", name=op.f("uq_loyalty_model_reports_model")),
    )
    op.create_table(
        "loyalty_churn_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("raised_at", sa.DateTime(), nullable=False),
        sa.Column("risk", sa.Float(), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("priority", sa.Float(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("outcome", sa.String(length=10), nullable=True),
        sa.Column("closed_at", sa.DateTime(), nullable=True),
        sa.Column("coupon_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["coupon_id"], ["loyalty_coupons.id"], name=op.f("fk_loyalty_churn_alerts_coupon_id_loyalty_coupons")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["loyalty_members.id"], name=op.f("fk_loyalty_churn_alerts_member_id_loyalty_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loyalty_churn_alerts")),
    )
    op.create_index("ix_loyalty_churn_alerts_status_priority", "loyalty_churn_alerts", ["status", "priority"])
    op.create_index(
        "uq_loyalty_churn_alerts_open_member",
        "loyalty_churn_alerts",
        ["member_id"],
        unique=True,
        sqlite_where=OPEN,
        postgresql_where=OPEN,
    )


def downgrade() -> None:
    op.drop_table("loyalty_churn_alerts")
    op.drop_table("loyalty_model_reports")
    op.drop_table("loyalty_member_segments")
    op.drop_table("loyalty_member_scores")
    op.drop_table("loyalty_job_locks")
    op.drop_table("loyalty_job_runs")
    with op.batch_alter_table("loyalty_point_lots") as batch_op:
        batch_op.drop_column("warned_at")
