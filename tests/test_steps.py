"""Finished-step records, the paper's render-only build, and ``make run`` (defect 8 of the rehearsal)."""

import subprocess
from pathlib import Path

import pytest

from helpers.book import chapter
from helpers.book import pipeline
from helpers.core import steps
from helpers.__main__ import main
from helpers.core.profiles import get_profile

ROOT = Path(__file__).resolve().parents[1]


def test_a_command_that_ends_well_leaves_a_record_of_its_settings(data_root, monkeypatch):
    smoke = get_profile("smoke")
    monkeypatch.setattr("helpers.classify.bench.run", lambda *a, **k: None)
    assert main(["bench", "data", "--profile", "smoke"]) == 0
    record = steps.finished(smoke, ["bench", "data"])
    assert record["command"] == "bench data" and record["seconds"] >= 0
    assert steps.finished(get_profile("smoke", {"jpeg_quality": 80}), ["bench", "data"]) is None
    assert steps.finished(smoke, ["bench", "train"]) is None


def test_a_failed_command_leaves_no_record(data_root):
    assert main(["train", "--profile", "smoke"]) == 1  # no manifest yet
    assert steps.finished(get_profile("smoke"), ["train"]) is None


def test_paper_builds_say_which_step_is_missing_and_how_to_run_it(data_root, monkeypatch):
    paper = get_profile("paper")
    monkeypatch.setattr(chapter, "launch", lambda *a, **k: pytest.fail("a paper build never runs a step"))
    with pytest.raises(chapter.StepNotDone) as info:
        chapter.run_step("train", paper, {}, nproc=2)
    text = "\n".join(info.value._render_traceback_())
    assert "$ torchrun --standalone --nproc_per_node=2 -m helpers train --profile paper" in text
    assert "make run PROFILE=paper" in text and "Traceback" not in text


def test_paper_builds_render_a_finished_step_without_running_it(data_root, monkeypatch, capsys):
    paper = get_profile("paper")
    steps.record_done(paper, ["train", "--profile", "paper"], 3600.0)
    steps.add_output(paper, ["train"], ["epoch 12: val_acc 0.99"], 3601.0, 2)
    monkeypatch.setattr(chapter, "launch", lambda *a, **k: pytest.fail("a paper build never runs a step"))
    chapter.run_step("train", paper, {}, nproc=2)
    out = capsys.readouterr().out
    assert "epoch 12: val_acc 0.99" in out and "in 3600 s; not run again by the book build" in out


def test_a_notebook_shows_the_missing_step_as_a_message_not_a_traceback(data_root, tmp_path):
    nbformat = pytest.importorskip("nbformat")
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "from helpers.book import chapter\nfrom helpers.core.profiles import get_profile\n"
        "chapter.run_step('generate', get_profile('paper'), {})")])
    with pytest.raises(CellExecutionError):
        NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    error = nb.cells[0].outputs[-1]
    shown = "\n".join(error["traceback"])
    assert "python -m helpers generate --profile paper" in shown
    assert "Traceback" not in shown and "File " not in shown


def test_make_run_runs_every_step_in_order_then_book_renders(monkeypatch):
    out = subprocess.run(["make", "-n", "run", "PROFILE=paper"], cwd=ROOT, capture_output=True, text=True)
    assert "-m helpers run --profile paper" in out.stdout


def test_make_run_lists_the_chapters_steps_in_order(data_root, monkeypatch):
    monkeypatch.setattr("helpers.book.ch5_transfer.prepare", lambda p: {})
    listed = list(pipeline.steps(get_profile("course")))
    commands = [(s.chapter, s.command, s.args) for s in listed]
    assert commands[:2] == [(1, "data", ()), (1, "generate", ())]
    assert (2, "augment", ("--both-classes",)) in commands
    assert [c for c in commands if c[1] == "inpaint"] == [
        (3, "inpaint", ("--model", m)) for m in get_profile("course").inpaint_model_list]
    assert commands.index((4, "train", ())) < commands.index((5, "train", ("--model", "vgg16")))
    assert all(s.nproc == 2 for s in listed if s.command == "train")  # no GPU here: 2 CPU processes
    chapter5 = [c for c in commands if c[0] <= 5]
    assert chapter5[-1][1] == "predict" and commands[:len(chapter5)] == chapter5
    chapter6 = commands[len(chapter5):]
    assert chapter6[:3] == [(6, "train", ("--robust-aug",)), (6, "probe", ()), (6, "robustness", ())]
    assert (6, "robustness", ("--probe",)) in chapter6 and chapter6[-1] == (6, "gradcam", ())


def test_book_outputs_of_different_profiles_never_mix():
    """Defect 1: the execution cache and the pages of a course build are not a smoke build's."""
    def dry(*extra):
        run = subprocess.run(["make", "-n", "book", *extra], cwd=ROOT, capture_output=True, text=True,
                             env={"PATH": "/usr/bin:/bin"})
        return [ln for ln in run.stdout.splitlines() if "jupyter-book build" in ln][0]

    smoke, course, paper = dry(), dry("PROFILE=course"), dry("PROFILE=paper")
    assert "--path-output _build/smoke" in smoke and "--path-output _build/course" in course
    assert "--path-output _build/paper" in paper
    assert "BOOK_PROFILE=course" in course


def test_a_rerun_that_finds_the_work_done_keeps_the_works_time_and_output(data_root):
    smoke = get_profile("smoke")
    steps.record_done(smoke, ["generate"], 120.0)
    steps.add_output(smoke, ["generate"], ["60 images generated"], 125.0, 1)
    steps.record_done(smoke, ["generate"], 2.0)  # a chapter's prerequisite: nothing left to do
    steps.add_output(smoke, ["generate"], ["0 images to generate"], 7.0, 1)
    record = steps.finished(smoke, ["generate"])
    assert (record["seconds"], record["launcher_seconds"], record["output"]) == (120.0, 125.0, ["60 images generated"])


def test_commands_are_shown_without_this_machines_paths(data_root):
    from helpers.core.paths import REPO_ROOT, results_root

    best = results_root("smoke") / "train" / "control" / "best.pt"
    line = " ".join(chapter.command_line("evaluate", get_profile("smoke"), {}, ["--checkpoint", str(best)], 1))
    assert line == "python -m helpers evaluate --checkpoint $BOOK_RESULTS_ROOT/smoke/train/control/best.pt --profile smoke"
    assert chapter.shown(str(REPO_ROOT / "notebooks" / "x.png")) == "notebooks/x.png"
    assert chapter.shown("/elsewhere/x.png") == "/elsewhere/x.png"


def test_results_made_from_standins_are_labelled_as_pipeline_checks(data_root, capsys):
    from helpers.book import results_page
    from helpers.core.paths import results_root

    course = get_profile("course")
    assert "from a run of the 'course' profile" in results_page.caveat(course)
    (results_root("course")).mkdir(parents=True)
    (results_root("course") / steps.STANDINS).write_text('{"book_set": "real_train=40"}')
    assert "rehearsal of the 'course' profile" in results_page.caveat(course)
    assert "pipeline checks, not findings" in results_page.caveat(course)
    chapter.setup("course")
    assert "REHEARSAL of 'course'" in capsys.readouterr().out


def test_what_a_step_printed_is_shown_without_this_machines_paths(data_root, monkeypatch, capsys):
    from helpers.core.paths import REPO_ROOT, results_root

    printed = (f"40 real images ready; manifest: {data_root}/smoke/manifest.csv\n"
               f"run {results_root('smoke')}/train/paper is finished\nsee {REPO_ROOT}/notebooks/x.png\n")
    monkeypatch.setattr(chapter.live, "run_command", lambda cmd, *a: subprocess.CompletedProcess(cmd, 0, printed, ""))
    chapter.launch("data", get_profile("smoke"), {})
    out = capsys.readouterr().out
    assert "manifest: $BOOK_DATA_ROOT/smoke/manifest.csv" in out
    assert "run $BOOK_RESULTS_ROOT/smoke/train/paper is finished" in out and "see notebooks/x.png" in out
    assert str(data_root) not in out and str(REPO_ROOT) not in out


def test_a_chapter_runs_only_the_earlier_steps_not_finished(data_root, monkeypatch, capsys):
    smoke = get_profile("smoke")
    listed = [pipeline.Step(1, "data"), pipeline.Step(4, "train", nproc=2), pipeline.Step(6, "probe")]
    monkeypatch.setattr(pipeline, "steps", lambda profile: iter(listed))
    launched = []
    monkeypatch.setattr(chapter, "run_step", lambda command, p, o, *args, **k: launched.append((command, k["nproc"])))
    steps.record_done(smoke, ["data"], 3.0)  # finished with these settings: not launched again
    pipeline.prerequisites(smoke, {}, before=6)
    assert launched == [("train", 2)]  # and never Chapter 6's own step
    assert "1 steps had finished with these settings, 1 ran now" in capsys.readouterr().out
