"""environment.yml (conda, GPU box) installs what pyproject.toml declares."""

import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def _pyproject():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = data["dependencies"] + data["optional-dependencies"]["book"]
    return {Requirement(r).name.lower(): str(Requirement(r).specifier) for r in reqs}


def _environment():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    return {Requirement(r).name.lower(): str(Requirement(r).specifier) for r in pip if not r.startswith("-e")}, pip


def test_same_packages_and_versions():
    assert _environment()[0] == _pyproject()


def test_installs_this_package():
    assert "-e ." in _environment()[1]


def test_python_matches():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert any(str(d).startswith("python=3.") for d in env["dependencies"])
