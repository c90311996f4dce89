"""Every chapter: a step's command running with its output live in the notebook, and kept in a log.

A ``paper`` step runs for hours. A cell that captured everything until the command ended would show
nothing all that time, so the notebook shows the command's last lines as they come -- tqdm's bars
redraw in place -- in one display that is replaced by a short summary when the command ends. The
rendered page therefore keeps the summary, not thousands of progress lines. Every line, stdout and
stderr, also goes to ``results/<profile>/logs/<step>.log`` (appended, one header per run), the file
to read when a step failed or to follow with ``tail -f`` from a shell.

Three ways to show the output, one way to run the command (:func:`run_command`):

- ``"stream"`` (``make run``, a terminal): every line printed as it comes, stderr to stderr;
- ``"live"`` (a notebook kernel): the last lines in one display, redrawn at most twice a second;
- ``"quiet"`` (anywhere else, e.g. a test): nothing while it runs; the caller prints the end.
"""

from __future__ import annotations

import codecs
import collections
import contextlib
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

from ..core.files import slug
from ..core.paths import results_root, shown

KEEP = 200_000  # characters of each stream kept in memory for the caller (the log keeps all)


class LiveView:
    """The last lines of a running command in one notebook display (``\\r`` redraws a line, as
    tqdm does), refreshed at most every ``every`` seconds; :meth:`close` shows a summary instead."""

    def __init__(self, handle, keep: int = 15, every: float = 0.5):
        self.handle, self.keep, self.every = handle, keep, every
        self.lines, self.shown_at = [""], 0.0

    def write(self, text: str) -> None:
        for part in re.split(r"(\r|\n)", text):
            if part == "\n":
                self.lines.append("")
            elif part == "\r":
                self.lines[-1] = ""
            else:
                self.lines[-1] += part
        del self.lines[:-self.keep]
        if time.monotonic() - self.shown_at >= self.every:
            self.show("\n".join(self.lines))

    def show(self, text: str) -> None:
        self.shown_at = time.monotonic()
        self.handle.update({"text/plain": shown(text)}, raw=True)

    def flush(self) -> None:
        pass


def notebook_view() -> LiveView | None:
    """A live view when this runs in a notebook kernel, else None."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        return None
    shell = get_ipython()
    if shell is None or not hasattr(shell, "kernel"):
        return None
    return LiveView(display({"text/plain": "(starting)"}, raw=True, display_id=True))


def log_path(profile_name: str, words) -> Path:
    """``results/<profile>/logs/<command and its arguments, as a file name>.log``."""
    return results_root(profile_name) / "logs" / f"{slug(shown(' '.join(words)))[:120]}.log"


class _Fanout:
    """Writes the same text to several places, one writer at a time (stdout and stderr share the
    log and the view)."""

    def __init__(self, *sinks, lock: threading.Lock):
        self.sinks, self.lock = [s for s in sinks if s is not None], lock

    def write(self, text: str) -> None:
        with self.lock:
            for sink in self.sinks:
                sink.write(text)
                sink.flush()


def _tee(source, sink, keep: int = KEEP) -> threading.Thread:
    """Copy the pipe ``source`` to ``sink`` as it comes (bytes as they arrive, not lines: a progress
    bar redraws with ``\\r``) and keep its last ``keep`` characters in the thread's ``kept``."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def copy():
        while chunk := os.read(source.fileno(), 4096):
            text = decoder.decode(chunk)
            sink.write(text)
            thread.kept.append(text)
            if len(thread.kept) > keep // 1000:
                thread.kept = collections.deque(["".join(thread.kept)[-keep:]])

    thread = threading.Thread(target=copy, daemon=True)
    thread.kept = collections.deque()
    thread.start()
    return thread


def _sinks(mode: str, log, view) -> tuple[_Fanout, _Fanout]:
    lock = threading.Lock()
    if mode == "stream":
        return _Fanout(sys.stdout, log, lock=lock), _Fanout(sys.stderr, log, lock=lock)
    return _Fanout(view, log, lock=lock), _Fanout(view, log, lock=lock)


def run_command(cmd: list[str], mode: str = "quiet", log: Path | None = None, typed: str = "",
                view: LiveView | None = None) -> subprocess.CompletedProcess:
    """Run ``cmd``; show its output as ``mode`` says, append all of it to ``log``; its stdout and
    stderr (their last :data:`KEEP` characters) and return code."""
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
    with (open(log, "a", encoding="utf-8") if log is not None else contextlib.nullcontext()) as log_file:
        if log_file is not None:
            log_file.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} $ {typed or shown(' '.join(cmd))}\n")
        out_sink, err_sink = _sinks(mode, log_file, view)
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0) as proc:
            out, err = _tee(proc.stdout, out_sink), _tee(proc.stderr, err_sink)
            out.join()
            err.join()
        if log_file is not None:
            log_file.write(f"=== exit status {proc.returncode}\n")
    return subprocess.CompletedProcess(cmd, proc.returncode, "".join(out.kept), "".join(err.kept))

