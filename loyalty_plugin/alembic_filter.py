"""Filters for a host's Alembic autogenerate, so it leaves the plugin's tables alone.

The plugin's tables are migrated by its own environment; without these, a host's
``flask db migrate`` sees them in the database, not in its models, and writes their drop::

    Migrate(app, db, include_name=loyalty_plugin.include_name)
"""

from __future__ import annotations

from typing import Any

PREFIX = "loyalty_"


def include_name(name: str | None, type_: str, parent_names: dict[str, Any]) -> bool:
    if type_ == "table":
        return not (name or "").startswith(PREFIX)
    table = parent_names.get("table_name") or ""
    return not table.startswith(PREFIX)


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    table = obj if type_ == "table" else getattr(obj, "table", None)
    table_name = getattr(table, "name", name) or ""
    return not table_name.startswith(PREFIX)
