"""index loyalty_orders.member_id

Tier evaluation and the first-order check of referrals look orders up by member.

Revision ID: 0002_index_orders_member
Revises: 7ea4ee1ef6ae
"""

from alembic import op

revision = "0002_index_orders_member"
down_revision = "7ea4ee1ef6ae"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_loyalty_orders_member_id", "loyalty_orders", ["member_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_loyalty_orders_member_id", table_name="loyalty_orders")
