"""The students' copy (``make student``): every ``{solution}`` out, every ``{exercise}`` in, code as in
the book, no outputs; a solution left open is refused by name. No build, no notebook runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers.book.student import SolutionError, strip_solutions, write_student_book

REPO = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((REPO / "notebooks").glob("*.ipynb"))


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _markdown(nb: dict) -> str:
    return "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")


@pytest.fixture(scope="module")
def student(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("student")
    written = write_student_book(REPO, out)
    assert [p.name for p in written] == [p.name for p in CHAPTERS]
    return out


def test_every_chapter_has_an_exercise_and_its_solution_each():
    for path in CHAPTERS:
        text = _markdown(_load(path))
        assert text.count("```{exercise}") >= 3, path.name
        assert text.count("```{exercise}") == text.count("```{solution}"), path.name
        assert "{admonition} Solutions" not in text, path.name


@pytest.mark.parametrize("chapter", [p.name for p in CHAPTERS])
def test_the_students_copy_has_no_solution_and_no_output(student, chapter):
    book, copy = _load(REPO / "notebooks" / chapter), _load(student / "notebooks" / chapter)
    assert "{solution" not in json.dumps(copy)
    assert _markdown(copy).count("{exercise}") == _markdown(book).count("{exercise}") > 0
    assert [c.get("id") for c in copy["cells"]] == [c.get("id") for c in book["cells"]]
    assert copy["metadata"] == book["metadata"]
    for ours, theirs in zip(copy["cells"], book["cells"]):
        if theirs["cell_type"] == "code":
            assert ours["source"] == theirs["source"] and ours["metadata"] == theirs["metadata"]
            assert ours["outputs"] == [] and ours["execution_count"] is None
        elif "{solution}" not in "".join(theirs["source"]):
            assert ours == theirs


def test_the_students_copy_builds_as_a_book(student):
    for name in ("_config.yml", "_toc.yml", "book/intro.md", "book/references.bib"):
        assert (student / name).is_file(), name
    assert "sphinx_exercise" in (student / "_config.yml").read_text(encoding="utf-8")
    course = (student / "book" / "course.md").read_text(encoding="utf-8")
    assert "```{exercise}" in course and "```{solution}" not in course


def test_a_solution_goes_with_its_blank_line_and_nothing_else():
    text = ("## Exercises\n\n```{exercise}\n:label: e1\n\nQ?\n```\n\n"
            "````{solution} e1\n:class: dropdown\n\n```python\nprint(1)\n```\n````\n\n"
            ":::{solution} e1\nA\n:::\n\n## Summary\n")
    assert strip_solutions(text) == "## Exercises\n\n```{exercise}\n:label: e1\n\nQ?\n```\n\n## Summary\n"
    assert strip_solutions("Q?\n\n```{solution} e1\nA\n```") == "Q?"
    with pytest.raises(SolutionError, match=r"\{solution-start\}.*not supported"):
        strip_solutions("```{solution-start} e1\n```\n")


def _notebook(markdown: str) -> dict:
    return {"cells": [{"cell_type": "markdown", "id": "a", "metadata": {}, "source": markdown.splitlines(True)}],
            "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def test_a_solution_left_open_is_refused_naming_the_notebook(tmp_path):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "07_broken.ipynb").write_text(json.dumps(_notebook(
        "```{exercise}\n:label: e1\n\nQ?\n```\n\n```{solution} e1\n:class: dropdown\n\nA, never closed\n")))
    where = r"notebooks/07_broken\.ipynb, cell 1 \(markdown\), line 7"
    with pytest.raises(SolutionError, match=where + ".*never closed"):
        write_student_book(tmp_path, tmp_path / "student")
    assert not (tmp_path / "student").exists()
