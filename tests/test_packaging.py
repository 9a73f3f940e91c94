"""What an install puts into site-packages: every package of the tree, nothing under a generic
name, and the commands that plug into ``pmr`` (setup.cfg)."""

from __future__ import annotations

import configparser
from importlib.metadata import entry_points
from pathlib import Path

from pmr_stream.cli import PLUGIN_GROUP, build_parser

ROOT = Path(__file__).resolve().parents[1]


def _options() -> configparser.SectionProxy:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    return cfg["options"]


def _listed(key: str) -> list[str]:
    return [line.strip() for line in _options()[key].splitlines() if line.strip()]


def test_every_package_of_the_tree_is_installed_under_a_project_name() -> None:
    mapping = dict(line.replace(" ", "").split("=") for line in _listed("package_dir"))
    folders = {installed: Path(folder) for installed, folder in mapping.items()}
    expected = set()
    for init in sorted(ROOT.rglob("__init__.py")):
        rel = init.parent.relative_to(ROOT)
        top = rel.parts[0]
        if top in ("pmr_stream",):
            expected.add(".".join(rel.parts))
        for installed, folder in folders.items():
            if top == folder.parts[0]:
                expected.add(".".join((installed, *rel.parts[1:])))
    listed = set(_listed("packages"))
    assert listed == expected, (sorted(listed - expected), sorted(expected - listed))
    assert all(name.split(".")[0].startswith("pmr_") for name in listed)  # nothing like `tools`


def test_the_plugins_load_and_add_their_commands() -> None:
    names = {ep.name: ep.value for ep in entry_points(group=PLUGIN_GROUP)}
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    declared = dict(
        line.split(" = ", 1) for line in cfg["options.entry_points"][PLUGIN_GROUP].strip().splitlines()
    )
    assert names == declared, names  # installed from this setup.cfg (reinstall after changing it)
    assert {"training", "bench", "export", "serve"} <= set(names)
    commands = set(build_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    assert {"train", "train-default", "evaluate", "train-evaluators", "bench", "export", "serve"} <= commands
    assert {"anonymizer", "produce", "view", "anonymize"} <= commands  # the library's own
