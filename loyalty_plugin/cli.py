"""``flask loyalty …``: migrations, checks, imports, demo data and jobs."""

from __future__ import annotations

from datetime import datetime

import click
from flask import current_app
from flask.cli import with_appcontext

from . import jobs, ledger, migrate, tiers


def _state():  # noqa: ANN202
    return current_app.extensions["loyalty"]


def _now(value: str | None) -> datetime:
    return datetime.fromisoformat(value) if value else _state().clock()


@click.group("loyalty")
def loyalty_cli() -> None:
    """The loyalty program."""


@loyalty_cli.group("db")
def db_group() -> None:
    """The plugin's own migrations (version table loyalty_alembic_version)."""


@db_group.command("upgrade")
@click.argument("revision", default="head")
@with_appcontext
def db_upgrade(revision: str) -> None:
    """Create or update the loyalty_ tables."""
    state = _state()
    migrate.upgrade(state.store.engine, revision)
    with state.store.work() as session:
        tiers.sync_tiers(session, state.settings)
    state.store.commit()
    click.echo(f"loyalty tables at revision {migrate.current(state.store.engine)}")


@db_group.command("downgrade")
@click.argument("revision")
@with_appcontext
def db_downgrade(revision: str) -> None:
    """Step the loyalty_ tables back to REVISION ('base' removes them)."""
    migrate.downgrade(_state().store.engine, revision)
    click.echo(f"loyalty tables at revision {migrate.current(_state().store.engine)}")


@db_group.command("current")
@with_appcontext
def db_current() -> None:
    click.echo(migrate.current(_state().store.engine) or "none")


@db_group.command("revision")
@click.option("-m", "--message", required=True)
@with_appcontext
def db_revision(message: str) -> None:
    """Autogenerate a migration from the models (plugin development)."""
    migrate.revision(_state().store.engine, message)


@loyalty_cli.command("verify")
@with_appcontext
def verify() -> None:
    """Rebuild every balance from the ledger and report any difference."""
    with _state().store.work(write=False) as session:
        found = ledger.verify(session)
    for d in found:
        click.echo(f"{d.user_id}: {d.what} recorded {d.recorded}, ledger says {d.rebuilt}")
    if found:
        raise click.ClickException(f"{len(found)} difference(s) between balances and the ledger.")
    click.echo("Every balance matches the ledger.")


JOBS = ("tiers", "release", "expire", "birthdays")


@loyalty_cli.command("run-job")
@click.argument("name", type=click.Choice(JOBS))
@click.option("--now", help="Run as if it were this ISO date-time (UTC).")
@with_appcontext
def run_job(name: str, now: str | None) -> None:
    """Run one background job now."""
    state = _state()
    moment = _now(now)
    if name == "tiers":
        with state.store.work() as session:
            run = tiers.evaluate_tiers(session, now=moment, settings=state.settings)
        state.store.commit()
        click.echo(f"tiers: {run.evaluated} evaluated, {run.upgraded} up, {run.downgraded} down, {run.kept} kept")
        return
    if name == "birthdays":
        result = jobs.birthdays(state.store, now=moment, settings=state.settings)
    else:
        work = jobs.release_pending if name == "release" else jobs.expire_points
        with click.progressbar(length=0, label=name, show_pos=True) as bar:
            result = work(state.store, now=moment, progress=bar.update)
    click.echo(f"{name}: {result.done} lot(s) done")
