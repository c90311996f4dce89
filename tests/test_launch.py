"""Chapter set-up: a step launched by `make run` streams its output and, when it fails, says why at the end."""

import sys

from helpers.book.chapter import _run, failure_summary

FAILING = (
    "import sys\n"
    "for i in range(3): sys.stderr.write(f'\\rprogress {i}'); sys.stderr.flush()\n"
    "print('one line of output')\n"
    "sys.stderr.write('\\nerror: no space left on device while saving last.pt\\n' + 'x' * 5000 + '\\n')\n"
    "sys.stderr.write('[rank1]: RuntimeError: Connection closed by peer\\n')\n"
    "sys.exit(1)\n"
)


def test_streamed_step_keeps_what_it_said_on_stderr(capsys):
    out = _run([sys.executable, "-c", FAILING], stream=True)
    shown = capsys.readouterr()
    assert out.returncode == 1
    assert out.stdout == "one line of output\n"
    assert "progress 2" in shown.err and "progress 2" in out.stderr  # shown as it came, and kept
    assert "one line of output" in shown.out


def test_failure_summary_puts_the_cause_before_the_tracebacks_it_caused():
    stderr = _run([sys.executable, "-c", FAILING], stream=True).stderr
    summary = failure_summary(stderr, tail=300)
    first, second = summary.splitlines()[:2]
    assert first == "error: no space left on device while saving last.pt"  # 5000 characters above the end
    assert second == "[rank1]: RuntimeError: Connection closed by peer"
    assert len(summary) < 600


def test_failure_summary_of_quiet_output_is_its_end():
    assert failure_summary("a\nb\nc", tail=3) == "b\nc"
