"""The README is the front door: it must list every setting and every command."""

from __future__ import annotations

from pathlib import Path

from loyalty_plugin.cli import loyalty_cli
from loyalty_plugin.config import DEFAULTS

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_readme_documents_every_setting():
    missing = [key for key in DEFAULTS if f"`{key}`" not in README]
    assert missing == []


def test_readme_documents_every_command():
    names = []
    for name, command in loyalty_cli.commands.items():
        subcommands = getattr(command, "commands", None)
        names += [f"{name} {sub}" for sub in subcommands] if subcommands else [name]
    missing = [n for n in names if f"flask loyalty {n.split()[0]}" not in README or n.split()[-1] not in README]
    assert missing == []
