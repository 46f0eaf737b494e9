"""Build the wheel, install it into a fresh virtual environment, and use it from there.

Proves the wheel carries templates/loyalty, static/loyalty and migrations: a shop that
installs it gets working pages and migrations, with none of this checkout on its path.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROBE = r"""
import tempfile
from flask import Flask
from flask_login import LoginManager, UserMixin
import loyalty_plugin
from loyalty_plugin import Loyalty, migrate
assert "site-packages" in loyalty_plugin.__file__, loyalty_plugin.__file__

class User(UserMixin):
    def __init__(self, uid):
        self.id = uid

app = Flask("probe", instance_path=tempfile.mkdtemp())
app.config.update(SECRET_KEY="probe-secret")
LoginManager(app).user_loader(User)
loyalty = Loyalty(app)
with app.app_context():
    migrate.upgrade(loyalty.state().store.engine)
    loyalty.enroll("u1")
    print("points", loyalty.record_order("o1", "u1", "25.00").points_awarded)
client = app.test_client()
assert client.get("/loyalty/api/v1/openapi.json").status_code == 200
assert client.get("/loyalty/static/loyalty.css").status_code == 200
for user, path, text in (("u1", "/loyalty/", "Your membership"), ("u2", "/loyalty/join", "Join the loyalty program")):
    with client.session_transaction() as session:
        session["_user_id"] = user
    page = client.get(path)
    assert page.status_code == 200 and text in page.get_data(as_text=True), (path, page.status_code)
print("wheel works")
"""


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        dist = Path(tmp) / "dist"
        shutil.rmtree(ROOT / "build", ignore_errors=True)  # setuptools would reuse stale files
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(dist), str(ROOT)], check=True
        )
        wheel = next(dist.glob("*.whl"))
        names = zipfile.ZipFile(wheel).namelist()
        for needed in (
            "loyalty_plugin/templates/loyalty/base.html",
            "loyalty_plugin/static/loyalty/loyalty.css",
            "loyalty_plugin/migrations/env.py",
            "loyalty_plugin/migrations/script.py.mako",
        ):
            assert needed in names, f"{needed} missing from {wheel.name}"
        assert any(n.startswith("loyalty_plugin/migrations/versions/") for n in names)
        assert not any(
            n.startswith(("wsgi", "tests/", "templates/demo", "loyalty_plugin/templates/demo")) for n in names
        )
        venv = Path(tmp) / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin/pip"), "install", "--quiet", str(wheel)], check=True)
        subprocess.run([str(venv / "bin/python"), "-c", PROBE], check=True, cwd=tmp)
    print(f"wheel check passed: {wheel.name}, {len(names)} files")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
