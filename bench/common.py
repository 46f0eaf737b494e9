"""What every benchmark shares: machine facts, an app on a bench database, timing, the report.

Each benchmark prints its figures as a table and, with ``--json PATH``, writes them for
``run_all.py`` to gather.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import sys
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
from flask import Flask

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
PG_URL = os.environ.get("LOYALTY_BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test_bench")


@dataclass
class Figure:
    """One measured number; ``target`` is an upper bound when there is one. ``correct`` is
    False when the work measured gave a wrong result: no time makes up for that."""

    name: str
    value: float
    unit: str
    target: float | None = None
    note: str = ""
    correct: bool = True

    @property
    def verdict(self) -> str:
        if not self.correct:
            return "WRONG"
        if self.target is None:
            return "info"
        return "PASS" if self.value <= self.target else "FAIL"


def _read(path: str, key: str) -> str:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "-"


def postgres_version(url: str) -> str:
    try:
        import psycopg

        from bench.generate import libpq_url

        with psycopg.connect(libpq_url(url), connect_timeout=3) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            return str(row[0]) if row else "?"
    except Exception as exc:
        return f"not reachable ({type(exc).__name__})"


def machine_facts(pg_url: str | None = None) -> dict[str, str]:
    mem_kb = _read("/proc/meminfo", "MemTotal").split()[0]
    facts = {
        "cpu": _read("/proc/cpuinfo", "model name"),
        "cores": str(os.cpu_count()),
        "memory": f"{int(mem_kb) / 1024**2:.1f} GiB" if mem_kb.isdigit() else "?",
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "sqlalchemy": _version("sqlalchemy"),
        "numpy": _version("numpy"),
        "psycopg": _version("psycopg"),
        "load average": " ".join(f"{x:.1f}" for x in os.getloadavg()),
    }
    if pg_url:
        facts["postgresql"] = postgres_version(pg_url)
    return facts


def print_facts(facts: dict[str, str]) -> None:
    print("machine: " + ", ".join(f"{k} {v}" for k, v in facts.items()))


def print_figures(title: str, figures: list[Figure]) -> None:
    print(f"\n{title}")
    width = max(len(f.name) for f in figures)
    print(f"  {'what':<{width}}  {'value':>12}  {'target':>10}  verdict  note")
    for f in figures:
        target = "" if f.target is None else f"<= {f.target:g}"
        print(
            f"  {f.name:<{width}}  {f.value:>9.{_places(f.value)}f} {f.unit:<2}  {target:>10}  {f.verdict:<7}  {f.note}"
        )


def _places(value: float) -> int:
    return 3 if abs(value) < 10 else 2 if abs(value) < 1000 else 0


def write_json(path: str | None, bench: str, figures: list[Figure], facts: dict[str, str], **extra: Any) -> None:
    if not path:
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    payload = {"bench": bench, "facts": facts, "figures": [asdict(f) for f in figures], **extra}
    Path(path).write_text(json.dumps(payload, indent=2, default=str))


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pg-url", default=PG_URL, help="PostgreSQL bench database (emptied!); '' to skip")
    parser.add_argument("--workdir", default=str(RESULTS_DIR), help="where SQLite files and CSVs go")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", help="also write the figures to this JSON file")


class BenchUser:
    """Any id is a logged-in user (what Flask-Login's ``UserMixin`` gives, without the import)."""

    is_authenticated = True
    is_active = True
    is_anonymous = False
    is_admin = False

    def __init__(self, user_id: str) -> None:
        self.id = str(user_id)
        self.email = f"{self.id}@example.com"

    def get_id(self) -> str:
        return self.id


class BenchAdmin(BenchUser):
    """Any id is a logged-in admin."""

    is_admin = True


def make_app(url: str, instance: str | Path, **config: Any) -> Flask:
    """A bare host: the plugin on its own engine, nothing else mounted."""
    from loyalty_plugin import Loyalty

    app = Flask("loyalty_bench", instance_path=str(instance))
    app.config.update(SECRET_KEY="bench", LOYALTY_DATABASE_URI=url, **config)
    Loyalty(app)
    return app


def cli_app() -> Flask:
    """The app ``flask --app bench.common:cli_app`` runs: the database from ``LOYALTY_BENCH_URL``."""
    return make_app(os.environ["LOYALTY_BENCH_URL"], os.environ.get("LOYALTY_BENCH_INSTANCE", str(RESULTS_DIR)))


def load_variant(path: str) -> Any:
    """A module written like one of the package's (relative imports work), to time a proposed
    change without editing the package: ``bench_tiers.py --compare``, ``bench_record_order.py --impl``."""
    import importlib.util

    name = f"loyalty_plugin._bench_{Path(path).stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"Cannot load {path}.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def percentiles(samples: list[float] | np.ndarray, *qs: float) -> list[float]:
    return [float(x) for x in np.percentile(np.asarray(samples), qs)]
