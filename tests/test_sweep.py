"""Defect 7: the temporary files of writers killed mid-write (``kill -9``) are removed by the next
run of a step; a live writer's files are kept."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.__main__ import main
from helpers.core.files import sweep_stale_tmp

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dead_pid():
    """The pid of a process that has ended (and been reaped)."""
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    pid = int(proc.stdout)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    return pid


def _leftovers(folder, dead_pid):
    """A dead writer's file, deep in ``folder``, and a live one's (this process) beside it."""
    dead = folder / "images" / "generated" / "train" / f".sd_000000000001.jpg.{dead_pid}.tmp"
    live = dead.with_name(f".sd_000000000002.jpg.{os.getpid()}.tmp")
    for path in (dead, live):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half a file")
    return dead, live


def test_only_files_of_dead_writers_are_removed(tmp_path, dead_pid):
    dead, live = _leftovers(tmp_path, dead_pid)
    others = [tmp_path / "a.jpg.part", tmp_path / f"{dead_pid}.tmp", tmp_path / ".notes.tmp",
              tmp_path / f".x.{dead_pid}.tmp.bak"]
    for path in others:
        path.write_bytes(b"x")
    assert sweep_stale_tmp(tmp_path) == [dead]
    assert not dead.exists() and live.exists() and all(p.exists() for p in others)
    assert sweep_stale_tmp(tmp_path / "absent") == []


def test_the_name_is_the_one_atomic_write_uses(tmp_path):
    """A writer of atomic_write that is killed (SIGKILL: no finally runs) leaves exactly the kind of
    file swept; an exception in Python cleans up after itself (tests/test_files.py)."""
    script = ("import os, signal, sys\nfrom helpers.core.files import atomic_write\n"
              "def killed(fh):\n    fh.write(b'half a file'); fh.flush(); os.kill(os.getpid(), signal.SIGKILL)\n"
              "atomic_write(sys.argv[1], killed)\n")
    proc = subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "x.png")], cwd=REPO)
    assert proc.wait(timeout=60) == -signal.SIGKILL
    (left,) = tmp_path.iterdir()
    assert left.name == f".x.png.{proc.pid}.tmp" and left.read_bytes() == b"half a file"
    assert sweep_stale_tmp(tmp_path) == [left] and not list(tmp_path.iterdir())


def test_the_data_step_sweeps_its_folders(data_root, dead_pid, monkeypatch):
    monkeypatch.delenv("BOOK_SET", raising=False)
    dead, live = _leftovers(data_root / "smoke", dead_pid)
    in_coco = data_root / "smoke" / "standin_coco" / "train2017" / f".000000000001.jpg.{dead_pid}.tmp"
    in_coco.parent.mkdir(parents=True)
    in_coco.write_bytes(b"")
    assert main(["data", "--profile", "smoke"]) == 0
    assert not dead.exists() and not in_coco.exists() and live.exists()


def test_generate_sweeps_before_it_starts(data_root, dead_pid, monkeypatch):
    monkeypatch.delenv("BOOK_SET", raising=False)
    sets = ["--set", "gen_train=2", "--set", "gen_val=1", "--set", "gen_test=1", "--set", "sd_steps=1"]
    assert main(["data", "--profile", "smoke", *sets]) == 0
    dead, live = _leftovers(data_root / "smoke", dead_pid)
    raw = data_root / "smoke" / "raw" / "generated" / "test" / f".sd_000000000009.png.{dead_pid}.tmp"
    raw.parent.mkdir(parents=True)
    raw.write_bytes(b"")
    assert main(["generate", "--profile", "smoke", *sets, "--limit", "0"]) == 0
    assert not dead.exists() and not raw.exists() and live.exists()


def test_augment_sweeps_before_it_starts(data_root, dead_pid, monkeypatch):
    monkeypatch.delenv("BOOK_SET", raising=False)
    dead, live = _leftovers(data_root / "smoke", dead_pid)
    assert main(["augment", "--profile", "smoke"]) == 1  # no manifest yet: it stops after sweeping
    assert not dead.exists() and live.exists()
