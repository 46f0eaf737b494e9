"""An app for tests that start real processes (schedulers, jobs to kill).

Settings come from ``TESTAPP_*`` environment variables, each a JSON value, through Flask's
``from_prefixed_env``: ``TESTAPP_LOYALTY_JOBS_RELEASE='"every 1 second"'``.
"""

from __future__ import annotations

import logging

from flask import Flask

from loyalty_plugin import Loyalty


def create_app() -> Flask:
    logging.basicConfig(level=logging.INFO, format="%(process)d %(name)s %(message)s")
    app = Flask("loyalty_process_test")
    app.config.from_prefixed_env("TESTAPP")
    Loyalty(app)
    return app
