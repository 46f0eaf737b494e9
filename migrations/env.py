"""The plugin's own Alembic environment: version table ``loyalty_alembic_version``, and only
``loyalty_`` tables, so it lives beside a host's Flask-Migrate without either touching the
other's tables. Run through ``flask loyalty db upgrade``, which hands it a connection."""

from __future__ import annotations

from alembic import context

from loyalty_plugin.models import Base

VERSION_TABLE = "loyalty_alembic_version"


def _ours(name: str | None, type_: str, parent_names: dict) -> bool:
    if type_ == "table":
        return bool(name) and name.startswith("loyalty_")
    return (parent_names.get("table_name") or "").startswith("loyalty_")


def run_migrations() -> None:
    connection = context.config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        include_name=_ours,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
