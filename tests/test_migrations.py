"""The plugin's Alembic environment produces exactly the models' schema, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from loyalty_plugin import migrate
from loyalty_plugin.database import normalise_url
from loyalty_plugin.models import Base

from .conftest import make_app


def ours(name, type_, parent_names):
    if type_ == "table":
        return name.startswith("loyalty_") and name != "loyalty_alembic_version"
    return True


def loyalty_tables(engine) -> set[str]:
    return {t for t in inspect(engine).get_table_names() if t.startswith("loyalty_")}


def test_migrations_produce_exactly_the_models_schema_and_downgrade_to_nothing(database_url):
    engine = create_engine(normalise_url(database_url))
    Base.metadata.drop_all(engine)
    migrate.upgrade(engine)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True, "include_name": ours})
        assert compare_metadata(context, Base.metadata) == []
    assert loyalty_tables(engine) == set(Base.metadata.tables) | {"loyalty_alembic_version"}
    migrate.downgrade(engine, "base")
    assert loyalty_tables(engine) == {"loyalty_alembic_version"}
    engine.dispose()


def test_flask_loyalty_db_upgrade_creates_the_tables_and_the_tiers(database_url, tmp_path):
    app = make_app(database_url, str(tmp_path / "instance"))
    engine = app.extensions["loyalty"].store.engine
    Base.metadata.drop_all(engine)
    result = app.test_cli_runner().invoke(args=["loyalty", "db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "loyalty tables at revision" in result.output
    assert "loyalty_members" in loyalty_tables(engine)
    again = app.test_cli_runner().invoke(args=["loyalty", "db", "upgrade"])
    assert again.exit_code == 0
    from sqlalchemy import text

    with engine.connect() as connection:
        assert connection.execute(text("SELECT code FROM loyalty_tiers ORDER BY rank")).scalars().all() == [
            "bronze",
            "silver",
            "gold",
        ]
    app.extensions["loyalty"].close()
