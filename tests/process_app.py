"""An app for tests that start real processes (schedulers, jobs to kill).

Settings come from ``TESTAPP_*`` environment variables, each a JSON value, through Flask's
``from_prefixed_env``: ``TESTAPP_LOYALTY_JOBS_RELEASE='"every 1 second"'``.

``TESTAPP_PAUSE_AFTER_WRITING='"loyalty_member_scores"'`` stops the process (SIGSTOP) right after
the first commit that wrote to that table, so a test kills it at a known point between two
committed batches instead of racing a fast job with its polling.
"""

from __future__ import annotations

import logging
import os
import signal
from typing import Any

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from loyalty_plugin import Loyalty


def pause_after_writing(table: str) -> None:
    wrote: set[int] = set()

    @event.listens_for(Engine, "after_cursor_execute")
    def note_write(connection: Any, cursor: Any, statement: str, *args: Any) -> None:
        head = statement.lstrip().upper()
        if head.startswith(("INSERT", "UPDATE", "DELETE")) and table.upper() in head:
            wrote.add(id(connection))

    @event.listens_for(Session, "after_commit")
    def stop_here(session: Session) -> None:
        if wrote:
            os.kill(os.getpid(), signal.SIGSTOP)


def create_app() -> Flask:
    logging.basicConfig(level=logging.INFO, format="%(process)d %(name)s %(message)s")
    app = Flask("loyalty_process_test")
    app.config.from_prefixed_env("TESTAPP")
    if table := app.config.get("PAUSE_AFTER_WRITING"):
        pause_after_writing(table)
    Loyalty(app)
    return app
