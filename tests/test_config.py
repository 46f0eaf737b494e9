"""Settings are validated at start-up, with the key named in the message."""

from __future__ import annotations

import pytest
from flask import Flask

from loyalty_plugin import ConfigError, Loyalty
from loyalty_plugin.config import DEFAULTS, DESCRIPTIONS, load_settings


def test_defaults_are_valid_and_each_is_described():
    settings = load_settings({})
    assert [t.code for t in settings.tiers] == ["bronze", "silver", "gold"]
    assert settings.pending_days == 14 and settings.coupon_valid_days == 90
    assert set(DESCRIPTIONS) == set(DEFAULTS)


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"LOYALTY_PENDING_DAYS": -1}, "LOYALTY_PENDING_DAYS"),
        ({"LOYALTY_PENDING_DAYS": "14"}, "LOYALTY_PENDING_DAYS"),
        ({"LOYALTY_POINTS_PER_UNIT": 1.5}, "LOYALTY_POINTS_PER_UNIT"),
        ({"LOYALTY_POINT_VALUE": 0.01}, "LOYALTY_POINT_VALUE"),
        ({"LOYALTY_POINT_VALUE": "-0.01"}, "LOYALTY_POINT_VALUE"),
        ({"LOYALTY_CURRENCY": "euro"}, "LOYALTY_CURRENCY"),
        ({"LOYALTY_URL_PREFIX": "loyalty/"}, "LOYALTY_URL_PREFIX"),
        ({"LOYALTY_TIERS": []}, "LOYALTY_TIERS"),
        ({"LOYALTY_TIERS": [{"code": "a", "threshold": "10"}]}, "LOYALTY_TIERS"),
        ({"LOYALTY_TIERS": [{"code": "a"}, {"code": "b", "threshold": "0"}]}, "LOYALTY_TIERS"),
        ({"LOYALTY_CAMPAIGNS": [{"starts": "2026-02-01", "ends": "2026-01-01"}]}, "LOYALTY_CAMPAIGNS[0]"),
        ({"LOYALTY_WEBHOOK_SECRET": "short"}, "LOYALTY_WEBHOOK_SECRET"),
        ({"LOYALTY_EARN_ON_TAX": "yes"}, "LOYALTY_EARN_ON_TAX"),
        ({"LOYALTY_PENDNG_DAYS": 3}, "LOYALTY_PENDNG_DAYS"),
    ],
)
def test_a_bad_setting_stops_start_up_naming_the_key(config, key, tmp_path):
    app = Flask("shop", instance_path=str(tmp_path))
    app.config.update(config)
    with pytest.raises(ConfigError) as refused:
        Loyalty(app)
    assert key in str(refused.value)
    assert "loyalty" not in app.extensions


def test_registering_twice_on_one_app_is_refused(tmp_path):
    app = Flask("shop", instance_path=str(tmp_path))
    loyalty = Loyalty()
    loyalty.init_app(app)
    with pytest.raises(RuntimeError, match="already registered"):
        loyalty.init_app(app)


def test_one_extension_serves_two_apps_with_their_own_settings_and_databases(tmp_path):
    loyalty = Loyalty()
    apps = []
    for name, days in (("a", 7), ("b", 30)):
        app = Flask(name, instance_path=str(tmp_path / name))
        app.config.update(SECRET_KEY="k", LOYALTY_PENDING_DAYS=days)
        loyalty.init_app(app)
        from loyalty_plugin.models import Base

        Base.metadata.create_all(app.extensions["loyalty"].store.engine)
        apps.append(app)
    with apps[0].app_context():
        loyalty.enroll("u1")
        assert loyalty.state().settings.pending_days == 7
    with apps[1].app_context():
        assert loyalty.get_member("u1") is None
        assert loyalty.state().settings.pending_days == 30
    assert (tmp_path / "a" / "loyalty.sqlite").exists() and (tmp_path / "b" / "loyalty.sqlite").exists()
