"""Colab: every chapter starts with the cell that installs the book there, cloning the repository
that _config.yml names, and the cell does nothing anywhere else."""

import json
import subprocess
import sys

import pytest

from helpers.book import colab
from helpers.core.paths import REPO_ROOT


def test_every_chapter_starts_with_the_install_cell_of_the_configured_repository():
    url = colab.repository_url()
    assert url.startswith("https://github.com/")
    expected = colab.install_source(url)
    for path in colab.chapters():
        first = json.loads(path.read_text())["cells"][0]
        assert "".join(first["source"]) == expected, f"{path.name}: run `python -m helpers.book.colab`"
        assert first["metadata"]["tags"] == [colab.TAG] and first["cell_type"] == "code"
    assert len(colab.chapters()) >= 6


def test_the_cell_does_nothing_outside_colab(tmp_path):
    out = subprocess.run([sys.executable, "-c", colab.install_source("https://example.invalid/x")],
                         cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout == "" and list(tmp_path.iterdir()) == []


def test_writing_it_twice_keeps_one_cell_and_the_rest_as_it_was():
    notebook = {"cells": [{"cell_type": "markdown", "source": ["# Chapter"], "metadata": {}}]}
    once = colab.with_install_cell(notebook, colab.install_source("https://github.com/a/b"))
    twice = colab.with_install_cell(once, colab.install_source("https://github.com/c/d"))
    assert len(twice["cells"]) == 2 and twice["cells"][1] == notebook["cells"][0]
    assert "https://github.com/c/d" in "".join(twice["cells"][0]["source"])


def test_a_config_without_the_setting_says_what_to_add(tmp_path):
    config = tmp_path / "_config.yml"
    config.write_text("title: x\nhtml:\n  use_repository_button: true\n")
    with pytest.raises(ValueError, match="repository: url"):
        colab.repository_url(config)


def test_the_launch_buttons_are_on():
    text = (REPO_ROOT / "_config.yml").read_text()
    assert "colab_url: https://colab.research.google.com" in text and "use_repository_button: true" in text


def test_every_cell_of_every_notebook_has_its_own_id():
    """nbformat 4.5 wants an id per cell (a missing one is a warning today, an error to come)."""
    for path in colab.chapters(REPO_ROOT):
        nb = json.loads(path.read_text(encoding="utf-8"))
        ids = [cell.get("id") for cell in nb["cells"]]
        assert None not in ids and len(set(ids)) == len(ids), path.name
