"""Chapter set-up: a step's output streams (make run) or shows live (a notebook), goes whole to its log,
and when the step fails the cause is said at the end."""

import sys

from helpers.book import chapter, live
from helpers.book.chapter import failure_summary
from helpers.core.profiles import get_profile

FAILING = (
    "import sys\n"
    "for i in range(3): sys.stderr.write(f'\\rprogress {i}'); sys.stderr.flush()\n"
    "print('one line of output')\n"
    "sys.stderr.write('\\nerror: no space left on device while saving last.pt\\n' + 'x' * 5000 + '\\n')\n"
    "sys.stderr.write('[rank1]: RuntimeError: Connection closed by peer\\n')\n"
    "sys.exit(1)\n"
)


def test_streamed_step_keeps_what_it_said_on_stderr(capsys, tmp_path):
    log = tmp_path / "logs" / "step.log"
    out = live.run_command([sys.executable, "-c", FAILING], "stream", log, typed="python -c ...")
    shown = capsys.readouterr()
    assert out.returncode == 1
    assert out.stdout == "one line of output\n"
    assert "progress 2" in shown.err and "progress 2" in out.stderr  # shown as it came, and kept
    assert "one line of output" in shown.out
    text = log.read_text()
    assert "$ python -c ..." in text and "one line of output" in text and "progress 2" in text
    assert "error: no space left on device" in text and text.rstrip().endswith("exit status 1")


def test_quiet_step_shows_nothing_while_it_runs_and_the_log_appends(capsys, tmp_path):
    log = tmp_path / "step.log"
    for _ in range(2):
        live.run_command([sys.executable, "-c", "print('hello')"], "quiet", log)
    assert capsys.readouterr().out == ""
    assert log.read_text().count("\nhello\n") == 2 and log.read_text().count("exit status 0") == 2


class FakeHandle:
    def __init__(self):
        self.shown = []

    def update(self, data, raw=False):
        self.shown.append(data["text/plain"])


def test_live_view_redraws_progress_in_place_and_keeps_the_last_lines():
    handle = FakeHandle()
    view = live.LiveView(handle, keep=3, every=0.0)
    view.write("start\n")
    for i in range(5):
        view.write(f"\r {i * 25}%|")
    view.write("\nline a\nline b\nline c")
    assert handle.shown[1] == "start\n 0%|"  # a redraw replaces the bar, it does not add a line
    assert handle.shown[-1] == "line a\nline b\nline c"
    view.show("summary")
    assert handle.shown[-1] == "summary"


def test_live_step_ends_with_its_summary_in_the_view(monkeypatch, tmp_path):
    monkeypatch.setenv("BOOK_RESULTS_ROOT", str(tmp_path))
    handle = FakeHandle()
    monkeypatch.setattr(live, "notebook_view", lambda: live.LiveView(handle, every=0.0))
    # the step: a script that prints one line (the arguments after it are ignored)
    monkeypatch.setattr(chapter, "_launcher", lambda *a: [sys.executable, "-c", "print('step done: 3 images')"])
    monkeypatch.setattr(chapter.steps, "add_output", lambda *a: None)
    chapter.launch("data", get_profile("smoke"), {})
    assert handle.shown[-1].startswith("step done: 3 images\n(its whole output: $BOOK_RESULTS_ROOT/smoke/logs/data.log)")
    assert "step done" in (tmp_path / "smoke" / "logs" / "data.log").read_text()


def test_failure_summary_ends_with_the_cause_said_above_the_tracebacks_it_caused(tmp_path):
    stderr = live.run_command([sys.executable, "-c", FAILING], "quiet", tmp_path / "x.log").stderr
    summary = failure_summary(stderr, tail=300)
    first, second = summary.splitlines()[-2:]
    assert first == "error: no space left on device while saving last.pt"  # 5000 characters above the end
    assert second == "[rank1]: RuntimeError: Connection closed by peer"
    assert len(summary) < 600


def test_failure_summary_of_quiet_output_is_its_end():
    assert failure_summary("a\nb\nc", tail=3) == "b\nc"


def test_a_warning_in_a_chapter_names_no_machine_path(capsys):
    import warnings

    from helpers.core.paths import REPO_ROOT

    chapter.quiet_warnings()
    line = warnings.formatwarning("deprecated", UserWarning, str(REPO_ROOT / "helpers" / "x.py"), 3)
    assert line == "helpers/x.py:3: UserWarning: deprecated\n"
    line = warnings.formatwarning("old", FutureWarning, "/opt/env/lib/python3.11/site-packages/timm/a.py", 9)
    assert line == "site-packages/timm/a.py:9: FutureWarning: old\n"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        chapter.quiet_warnings()
        warnings.warn("IProgress not found. Please update jupyter and ipywidgets.")
    assert caught == []
