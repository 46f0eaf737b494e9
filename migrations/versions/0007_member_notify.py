"""member change notifications: on PostgreSQL a trigger on loyalty_members notifies the channel
``loyalty_members`` with the member's user id whenever what their pages are keyed by changes,
so that workers with LOYALTY_PAGE_CACHE_NOTIFY can keep the keys instead of reading them on
every request. Nothing on SQLite.

Revision ID: 0007_member_notify
Revises: 0006_admin_figures
"""

from alembic import op

revision = "0007_member_notify"
down_revision = "0006_admin_figures"
branch_labels = None
depends_on = None

NOTIFY = [
    "CREATE OR REPLACE FUNCTION loyalty_member_notify() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN PERFORM pg_notify('loyalty_members', OLD.user_id); "
    "IF TG_OP = 'UPDATE' AND NEW.user_id IS DISTINCT FROM OLD.user_id THEN "
    "PERFORM pg_notify('loyalty_members', NEW.user_id); END IF; RETURN NULL; END $$",
    "CREATE TRIGGER loyalty_member_notify AFTER DELETE OR UPDATE OF version, tier_code, tier_reached_at, "
    "erased_at, user_id ON loyalty_members FOR EACH ROW EXECUTE PROCEDURE loyalty_member_notify()",
]
DROP = [
    "DROP TRIGGER IF EXISTS loyalty_member_notify ON loyalty_members",
    "DROP FUNCTION IF EXISTS loyalty_member_notify()",
]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in NOTIFY:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in DROP:
            op.execute(statement)
