"""The locked environment: pyproject.toml, requirements.lock and environment.yml agree, and make uses the lock."""

import importlib.util
import re
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("lock_tool", ROOT / "tools" / "lock.py")
lock_tool = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lock_tool)


def _pyproject(extras=("book", "dev")):
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = data["dependencies"] + [r for e in extras for r in data["optional-dependencies"][e]]
    return [Requirement(r) for r in reqs if not r.startswith("genimg-book")]


def _lock():
    return lock_tool.read_lock((ROOT / "requirements.lock").read_text())


def _environment_pip():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    return next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)


def test_lock_pins_every_dependency_within_its_bounds():
    pins = _lock()
    for req in _pyproject():
        name = canonicalize_name(req.name)
        assert name in pins, f"requirements.lock lacks {req.name}: run `make lock`"
        assert Version(pins[name]) in req.specifier, f"{req.name}=={pins[name]} is outside {req.specifier}"


def test_environment_pins_the_locked_versions():
    pins, pip = _lock(), _environment_pip()
    pinned = {canonicalize_name(Requirement(r).name): str(Requirement(r).specifier)
              for r in pip if not r.startswith("-")}
    assert set(pinned) == {canonicalize_name(r.name) for r in _pyproject(extras=("book",))}
    assert all(spec == f"=={pins[name]}" for name, spec in pinned.items()), pinned
    assert "-c requirements.lock" in pip and "-e ." in pip


def test_environment_text_is_what_make_lock_writes():
    assert lock_tool.environment_text(_lock()) == (ROOT / "environment.yml").read_text()


def test_make_installs_with_the_lock():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^LOCK \?= requirements\.lock$", makefile, re.M)
    assert "pip install $(if $(LOCK),-c $(LOCK)) -e" in makefile
    assert re.search(r"^\$\(STAMP\): pyproject\.toml \$\(LOCK\)$", makefile, re.M)


def test_a_bad_lock_line_is_refused():
    with pytest.raises(ValueError, match="make lock"):
        lock_tool.read_lock("torch>=2.2\n")


def test_python_matches():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert any(str(d).startswith("python=3.") for d in env["dependencies"])
