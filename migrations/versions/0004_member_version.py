"""member version: bumped by every change the member's pages show, the key of their page cache

Revision ID: 0004_member_version
Revises: 0003_jobs_and_analytics
"""

import sqlalchemy as sa
from alembic import op


revision = "0004_member_version"
down_revision = "0003_jobs_and_analytics"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("loyalty_members") as batch_op:
        batch_op.add_column(sa.Column("version", sa.BigInteger(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("loyalty_members") as batch_op:
        batch_op.drop_column("version")
