"""``make rehearse``: what it sets, what it checks in the rendered pages, where its report goes."""

import json
import subprocess
from pathlib import Path

from helpers.core.profiles import get_profile
from helpers.rehearsal import orchestrate, timings

ROOT = Path(__file__).resolve().parents[1]


def _dry(*words):
    run = subprocess.run(["make", "-n", "rehearse", *words], cwd=ROOT, capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin"})
    return run.stdout


def test_make_rehearse_runs_the_named_profile_and_full_size_on_request():
    assert "-m helpers.rehearsal run course" in _dry("PROFILE=course")
    assert "-m helpers.rehearsal run paper --full-size" in _dry("PROFILE=paper", "FULL_SIZE=1")


def test_a_cpu_rehearsal_shrinks_sizes_and_says_so_a_full_size_one_does_not(monkeypatch):
    cpu, full = orchestrate.book_set(False), orchestrate.book_set(True)
    assert "train_img_size=64" in cpu and "train_img_size" not in full and "sd_steps" not in full
    monkeypatch.setenv("BOOK_SET", cpu)
    paper = get_profile("paper")
    assert paper.train_model == "convnext_xlarge.fb_in22k_ft_in1k_384"  # the real architecture
    assert "changed from the published profile" in paper.describe() and "train_img_size=64" in paper.describe()
    from helpers.rehearsal.hub import hub_ids_for

    # the probe's smaller encoder on a CPU comes from its own real hub address; full size keeps ViT-L-14
    assert paper.probe_model == "ViT-B-32" and "timm/vit_base_patch32_clip_224.openai" in hub_ids_for(paper)
    assert "probe_model" not in full


def test_a_cpu_rehearsal_trains_fewer_but_every_kind_of_run():
    from helpers.core.profiles import CONTROLS

    for name in ("course", "paper"):
        sets = dict(item.split("=", 1) for item in orchestrate.book_set(False, name).split())
        profile = get_profile(name, sets)  # every value is a valid setting
        assert profile.ablation_seeds >= 1
    course = get_profile("course", dict(item.split("=", 1) for item in orchestrate.book_set(False, "course").split()))
    assert len(course.ablation_lr_grid.split(",")) == 2 and course.ablation_seeds == 2
    assert sorted(course.controls.split(",")) == sorted(CONTROLS)  # paper: none (disk), course: all
    assert "controls" not in orchestrate.book_set(True, "paper") and "ablation_seeds" not in orchestrate.book_set(True, "paper")


def test_the_rendered_pages_are_checked_for_the_profile_and_tracebacks(tmp_path):
    pages = tmp_path / "_build" / "html" / "notebooks"
    pages.mkdir(parents=True)
    (pages / "01_data.html").write_text("<pre>profile 'course':</pre>")
    (pages / "02_aug.html").write_text("<pre>profile 'smoke':</pre>")
    (pages / "03_inp.html").write_text("profile 'course': Traceback (most recent call last)")
    assert orchestrate.check_pages(tmp_path, "course") == [
        "02_aug.html does not name the profile 'course'", "03_inp.html shows a traceback"]


def test_the_running_page_shows_each_report_and_what_is_still_to_be_measured(tmp_path, capsys):
    report = dict(profile="course", full_size=False, device="CPU (x86_64, 2 cores)", book_set="real_train=40",
                  setup_seconds=60, build_seconds=600, note="CPU rehearsal",
                  steps=[dict(command="data", seconds=6.5, processes=1)], chapters={"01_data": 170.0})
    (tmp_path / "rehearsal-course.json").write_text(json.dumps(report))
    timings.show(tmp_path)
    out = capsys.readouterr().out
    assert "CPU (x86_64, 2 cores)" in out and "still to be taken" in out
    assert timings.step_table(report).loc[0, "step"] == "python -m helpers data"
    assert timings.summary(timings.reports(tmp_path)).loc[0, "book build (min)"] == 10.0
    line = timings.page_time("01_data", tmp_path)  # a chapter's "Time to run", as measured
    assert line.startswith("2.8 min in the course rehearsal on CPU (x86_64, 2 cores)") and "BOOK_SET" in line
    assert "`" not in line
    assert timings.page_time("07_generalization", tmp_path).startswith("not measured yet")


def test_a_passed_rehearsal_deletes_its_checkpoints_and_keeps_the_rest(tmp_path):
    run = tmp_path / "results" / "paper" / "train" / "paper"
    run.mkdir(parents=True)
    (run / "last.pt").write_bytes(b"x" * 3000)
    (run / "best.pt").write_bytes(b"x" * 1000)
    (run / "metrics.csv").write_text("epoch\n1\n")
    (tmp_path / "hf-home").mkdir()
    (tmp_path / "hf-home" / "model.safetensors").write_bytes(b"w")
    assert orchestrate.release_checkpoints(tmp_path) == 4000
    assert sorted(p.name for p in run.iterdir()) == ["metrics.csv"]
    assert (tmp_path / "hf-home" / "model.safetensors").exists()
