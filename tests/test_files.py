"""helpers.core.files: a reader sees the old file or the whole new one, never half of one; names
made safe; a user's folder listed without its hidden files and subfolders."""

from __future__ import annotations

import pytest
import torch

from helpers.core.files import (
    atomic_torch_save,
    atomic_write,
    atomic_write_bytes,
    atomic_write_text,
    list_files,
    slug,
)


def test_a_write_leaves_the_whole_file_and_no_temporary_file(tmp_path):
    path = tmp_path / "deep" / "er" / "a.txt"  # missing folders are made
    atomic_write_text(path, "first ü")
    assert path.read_text(encoding="utf-8") == "first ü"
    atomic_write_bytes(path, b"second")
    assert path.read_bytes() == b"second"
    assert [p.name for p in path.parent.iterdir()] == ["a.txt"]


def test_a_write_that_raises_keeps_the_old_file_and_cleans_up(tmp_path):
    path = tmp_path / "a.json"
    atomic_write_text(path, "old")

    def half_then_fail(fh):
        fh.write(b"half of the new")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, half_then_fail)
    assert path.read_text() == "old"
    assert list(tmp_path.iterdir()) == [path]  # no .a.json.PID.tmp left behind
    with pytest.raises(OSError):
        atomic_write(tmp_path / "new.json", half_then_fail)
    assert not (tmp_path / "new.json").exists()


def test_torch_save_round_trip(tmp_path):
    state = {"epoch": 3, "weights": torch.arange(6, dtype=torch.float32).reshape(2, 3)}
    path = tmp_path / "ckpt" / "last.pt"
    atomic_torch_save(state, path)
    loaded = torch.load(path, weights_only=True)
    assert loaded["epoch"] == 3 and torch.equal(loaded["weights"], state["weights"])
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]


@pytest.mark.parametrize("text, expected", [
    ("DALL-E 2", "dall-e-2"),
    ("Places2 (pconv)", "places2-pconv"),
    ("VGG-16", "vgg-16"),
    ("Stable Diffusion", "stable-diffusion"),
    ("sd2_inpaint", "sd2-inpaint"),
    ("paper-best_test.v2", "paper-best-test.v2"),
    ("  --Imagen--  ", "imagen"),
    ("../../etc/passwd", "etc-passwd"),
    ("***", "set"),
])
def test_slug(text, expected):
    assert slug(text) == expected


def test_list_files_skips_hidden_files_and_subfolders(tmp_path):
    for name in ("b.png", "a.jpg", ".hidden.jpg", ".a.jpg.123.tmp", "C.JPEG"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "inner.jpg").write_bytes(b"x")
    assert [p.name for p in list_files(tmp_path)] == ["C.JPEG", "a.jpg", "b.png"]
    assert list_files(tmp_path / "sub") == [tmp_path / "sub" / "inner.jpg"]
