"""``flask loyalty …``: migrations, checks, imports, demo data and jobs."""

from __future__ import annotations

import contextlib
import signal
from datetime import datetime, timedelta

import click
from flask import current_app
from flask.cli import with_appcontext

from . import job_runs, ledger, migrate, tiers
from .errors import LoyaltyError
from .schedule import JOB_NAMES


def _state():
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


@loyalty_cli.command("run-job")
@click.argument("name", type=click.Choice(JOB_NAMES))
@click.option("--now", help="Run as if it were this ISO date-time (UTC).")
@with_appcontext
def run_job_command(name: str, now: str | None) -> None:
    """Run one background job now, recorded like a scheduled run."""
    state = _state()
    with click.progressbar(length=0, label=name, show_pos=True) as bar:
        try:
            run = job_runs.run_job(state, name, now=_now(now), progress=bar.update)
        except Exception as exc:
            raise click.ClickException(f"{name} failed; the run is recorded as failed: {exc}") from exc
    if run is None or run.status != "succeeded":
        raise click.ClickException(f"{name} did not run: {run.error if run else 'another worker claimed it'}")
    counts = ", ".join(f"{value} {key}" for key, value in (run.counts or {}).items()) or "nothing to do"
    click.echo(f"{name}: {counts} (run {run.id})")


@loyalty_cli.command("scheduler")
@with_appcontext
def scheduler_command() -> None:
    """Run the job scheduler in this process until stopped (Ctrl-C or SIGTERM)."""
    from .scheduler import build_scheduler

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    scheduler = build_scheduler(app, blocking=True)
    jobs = scheduler.get_jobs()
    if not jobs:
        raise click.ClickException("Every LOYALTY_JOBS_* schedule is switched off: nothing to run.")
    for job in jobs:
        click.echo(f"{job.name}: {job.trigger}")

    def stop(_signum: int, _frame: object) -> None:
        scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, stop)
    with contextlib.suppress(KeyboardInterrupt):
        scheduler.start()
    click.echo("scheduler stopped")


@loyalty_cli.command("report")
@click.argument("name", type=click.Choice(["churn", "segments", "tiers", "ab"]))
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), help="Write the report's rows to this CSV.")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), help="ab: first day (default: 30 days ago).")
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), help="ab: last day (default: today).")
@with_appcontext
def report_command(name: str, csv_path: str | None, since: datetime | None, until: datetime | None) -> None:
    """Print a report's summary (as of the last churn scan for churn and segments; ab: the
    recommendations A/B test per variant, with 95 % intervals)."""
    from . import experiments, reports

    state = _state()
    with state.store.work(write=False) as session:
        if name == "tiers":
            report = reports.tiers_report(session, now=state.clock(), settings=state.settings)
        elif name == "ab":
            last = until.date() if until else state.clock().date()
            first = since.date() if since else last - timedelta(days=29)
            if first > last:
                raise click.BadParameter("--since must not be after --until.", param_hint="--since")
            report = experiments.ab_report(session, state.settings, since=first, until=last)
        else:
            report = reports.churn_report(session) if name == "churn" else reports.segments_report(session)
    for line in report.summary:
        click.echo(line)
    if csv_path:
        report.write_csv(csv_path)
        click.echo(f"{len(report.rows)} row(s) written to {csv_path}")


@loyalty_cli.command("evaluate-recommender")
@click.option(
    "--cutoff", type=click.DateTime(["%Y-%m-%d"]), help="Train before this day (default: WEEKS before the last order)."
)
@click.option("--weeks", default=13, show_default=True, type=click.IntRange(1, 104), help="Weeks tested after it.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), help="Write the table to this CSV.")
@with_appcontext
def evaluate_recommender_command(cutoff: datetime | None, weeks: int, csv_path: str | None) -> None:
    """Offline evaluation on the shop's own orders: train before one cut-off, test on the next
    weeks; the blend beside popularity, buy-again and item-kNN, for items new to the member and
    for all items."""
    from .recommend.evaluate import evaluate
    from .recommender_store import purchases

    state = _state()
    with state.store.work(write=False) as session:
        data = purchases(session, until=state.clock())
    if data.empty:
        raise click.ClickException("There are no orders to evaluate on: record or import orders first.")
    cut = cutoff or (data["at"].max() - timedelta(weeks=weeks)).normalize().to_pydatetime()
    if not data["at"].min() < cut <= data["at"].max():
        raise click.BadParameter(
            f"the orders run from {data['at'].min():%Y-%m-%d} to {data['at'].max():%Y-%m-%d}; pick a day between.",
            param_hint="--cutoff",
        )
    with click.progressbar(length=1, label="evaluating", show_pos=True) as bar:

        def progress(done: int, total: int) -> None:
            bar.length = total
            bar.update(done - bar.pos)

        result = evaluate(data, cutoff=cut, weeks=weeks, progress=progress)
    click.echo(f"cut-off {cut:%Y-%m-%d}, {weeks} test weeks, top {result.k}")
    click.echo(result.summary())
    if csv_path:
        result.table.to_csv(csv_path)
        click.echo(f"{len(result.table)} row(s) written to {csv_path}")


@loyalty_cli.command("import-orders")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--mapping", help="Column mapping: a known export ('online-retail') or JSON {our_column: their_header}.")
@click.option("--enroll", is_flag=True, help="Make every customer in the file a member (no welcome bonus).")
@click.option("--award-points", is_flag=True, help="Earn points on imported orders of members, as if live.")
@click.option("--errors", "errors_path", type=click.Path(dir_okay=False), help="Write every rejected line to this CSV.")
@with_appcontext
def import_orders_command(
    path: str, mapping: str | None, enroll: bool, award_points: bool, errors_path: str | None
) -> None:
    """Back-fill order history from a CSV with one line per order line; safe to run again."""
    from . import importer

    state = _state()
    columns = importer.resolve_mapping(mapping)
    try:
        with click.progressbar(length=importer.count_lines(path), label="importing", show_pos=True) as bar:
            report = importer.import_orders(
                state.store,
                path,
                mapping=columns,
                enroll=enroll,
                award_points=award_points,
                settings=state.settings,
                now=state.clock(),
                progress=bar.update,
            )
    except LoyaltyError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(report.summary())
    if errors_path:
        report.write_rejections(errors_path)
        click.echo(f"rejected lines written to {errors_path}")


@loyalty_cli.command("import-items")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@with_appcontext
def import_items_command(path: str) -> None:
    """Load or update the catalog (sku, name, category, price, url, image_url, in_stock, consumable)."""
    from . import importer

    state = _state()
    try:
        report = importer.import_items(state.store, path, now=state.clock())
    except LoyaltyError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(report.summary())


@loyalty_cli.command("seed-demo")
@click.option("--seed", default=7, show_default=True, help="Same seed, same shop.")
@click.option("--customers", default=2000, show_default=True)
@click.option("--days", default=365, show_default=True, help="How much order history to generate.")
@with_appcontext
def seed_demo_command(seed: int, customers: int, days: int) -> None:
    """Fill an empty program with a realistic demo shop's customers, items and a year of orders."""
    from . import demo

    state = _state()
    with click.progressbar(length=customers, label="customers", show_pos=True) as bar:
        report = demo.seed_demo(
            state.store,
            state.settings,
            seed=seed,
            customers=customers,
            days=days,
            now=state.clock(),
            create_users=state.seed_users,
            progress=bar.update,
        )
    click.echo(report.summary())
