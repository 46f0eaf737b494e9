"""recommender: fitted versions, widget impressions per day and variant, clicks

Revision ID: 0005_recommender
Revises: 0004_member_version
"""

import sqlalchemy as sa
from alembic import op


revision = "0005_recommender"
down_revision = "0004_member_version"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "loyalty_recommender_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fitted_at", sa.DateTime(), nullable=False),
        sa.Column("trained_until", sa.DateTime(), nullable=False),
        sa.Column("fit_seconds", sa.Float(), nullable=False),
        sa.Column("users", sa.Integer(), nullable=False),
        sa.Column("items", sa.Integer(), nullable=False),
        sa.Column("interactions", sa.Integer(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("scores", sa.JSON(), nullable=True),
        sa.Column("artifact", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loyalty_recommender_versions")),
    )
    op.create_table(
        "loyalty_recommendation_impressions",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("experiment", sa.String(length=100), nullable=False),
        sa.Column("variant", sa.String(length=30), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("items_shown", sa.Integer(), nullable=False),
        sa.Column("views", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "day", "experiment", "variant", "user_id", name=op.f("pk_loyalty_recommendation_impressions")
        ),
    )
    op.create_table(
        "loyalty_recommendation_clicks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("experiment", sa.String(length=100), nullable=False),
        sa.Column("variant", sa.String(length=30), nullable=False),
        sa.Column("sku", sa.String(length=100), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=True),
        sa.Column("clicked_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loyalty_recommendation_clicks")),
    )
    op.create_index(
        "ix_loyalty_recommendation_clicks_user_sku",
        "loyalty_recommendation_clicks",
        ["user_id", "sku", "clicked_at"],
    )
    op.create_index(
        "ix_loyalty_recommendation_clicks_experiment",
        "loyalty_recommendation_clicks",
        ["experiment", "clicked_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_loyalty_recommendation_clicks_experiment", table_name="loyalty_recommendation_clicks")
    op.drop_index("ix_loyalty_recommendation_clicks_user_sku", table_name="loyalty_recommendation_clicks")
    op.drop_table("loyalty_recommendation_clicks")
    op.drop_table("loyalty_recommendation_impressions")
    op.drop_table("loyalty_recommender_versions")
