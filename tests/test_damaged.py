"""Defect 6: a prepared image damaged on disk after its step. Training, evaluation and prediction
name the file and the command that re-makes it, with no traceback, and keep the finished epochs;
the data and generate steps find damaged files and make them again."""

import io
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from test_coco_mirror_url import COUNTS, SETS

from helpers.data import manifest as mf
from helpers.__main__ import main
from helpers.classify.dataset import DamagedImage, ManifestDataset, damaged_message
from helpers.core.paths import results_root

DATA = ["--set", "gen_train=4", "--set", "gen_val=2", "--set", "gen_test=2", "--set", "sd_steps=2"]
ONE_EPOCH = ["--set", "train_epochs=1", "--set", "train_patience=5"]


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """Smoke's photographs and generated images, and a classifier trained for one epoch."""
    root = tmp_path_factory.mktemp("damaged")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BOOK_DATA_ROOT", str(root / "data"))
        mp.setenv("BOOK_RESULTS_ROOT", str(root / "results"))
        for var in ("BOOK_PROFILE", "BOOK_SET", "WORLD_SIZE", "RANK", "LOCAL_RANK"):
            mp.delenv(var, raising=False)
        assert main(["data", "--profile", "smoke", *DATA]) == 0
        assert main(["generate", "--profile", "smoke", *DATA]) == 0
        assert main(["train", "--profile", "smoke", *ONE_EPOCH]) == 0
    return root


@pytest.fixture
def study(made, tmp_path, monkeypatch):
    """The shared data (each test restores what it damages) and a copy of the trained run."""
    monkeypatch.setenv("BOOK_DATA_ROOT", str(made / "data"))
    shutil.copytree(made / "results", tmp_path / "results")
    monkeypatch.setenv("BOOK_RESULTS_ROOT", str(tmp_path / "results"))
    for var in ("BOOK_PROFILE", "BOOK_SET", "WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    frame = mf.load("smoke")
    saved = {p: (made / "data" / p).read_bytes() for p in frame.path}
    yield made / "data", frame
    for p, body in saved.items():
        (made / "data" / p).write_bytes(body)


def _pick(frame, label, split):
    return frame[(frame.label_name == label) & (frame.split == split)].path.iloc[0]


def _clean_error(err: str, rel: str, command: str) -> None:
    assert "Traceback" not in err and "DataLoader" not in err
    assert f"error: the prepared image {rel} (in the data root) is damaged" in err
    assert f"`python -m helpers {command} --profile smoke` re-makes it" in err


def test_training_names_a_file_overwritten_with_junk(study, capsys, tmp_path, monkeypatch):
    data, frame = study
    rel = _pick(frame, "real", "train")
    (data / rel).write_bytes(b"junk" * 100)
    monkeypatch.setenv("BOOK_RESULTS_ROOT", str(tmp_path / "fresh"))  # before the first epoch
    assert main(["train", "--profile", "smoke", *ONE_EPOCH]) == 1
    _clean_error(capsys.readouterr().err, rel, "data")


def test_a_file_cut_short_stops_training_mid_epoch_and_keeps_the_finished_epochs(study, capsys):
    data, frame = study
    rel = _pick(frame, "generated", "val")
    body = (data / rel).read_bytes()
    (data / rel).write_bytes(body[: len(body) // 2])  # its header is whole: found while decoding
    out = results_root("smoke") / "train" / "paper"  # this test's copy of the one-epoch run
    metrics_before = (out / "metrics.csv").read_bytes()
    assert main(["train", "--profile", "smoke", "--set", "train_epochs=2", "--set", "train_workers=2"]) == 1
    printed, err = capsys.readouterr()
    assert "resuming after epoch 1" in printed  # past the check of the files' headers: found in epoch 2
    _clean_error(err, rel, "generate")
    assert "the finished epochs are kept in" in err
    assert torch.load(out / "last.pt", map_location="cpu", weights_only=True)["epoch"] == 1
    assert (out / "metrics.csv").read_bytes() == metrics_before


def test_a_dataloader_worker_error_gives_back_the_clean_message(study):
    data, frame = study
    rel = _pick(frame, "real", "val")
    (data / rel).write_bytes(b"\xff\xd8\xff\xe0 not the rest of a jpeg")
    rows = frame[frame.path == rel]
    loader = torch.utils.data.DataLoader(ManifestDataset(rows), num_workers=1)
    with pytest.raises(DamagedImage) as info:
        next(iter(loader))
    assert "Traceback" in str(info.value)  # the worker's wrapper ...
    message = damaged_message(info.value)  # ... and the message taken back out of it
    assert message.startswith(f"the prepared image {rel} (in the data root) is damaged")
    assert "Traceback" not in message and message.endswith("re-makes it")


def test_evaluation_and_prediction_name_the_damaged_test_image(study, capsys):
    data, frame = study
    rel = _pick(frame, "generated", "test")
    (data / rel).write_bytes(b"")
    assert main(["evaluate", "--profile", "smoke"]) == 1
    _clean_error(capsys.readouterr().err, rel, "generate")
    body = (data / _pick(frame, "real", "test")).read_bytes()
    rel = _pick(frame, "real", "test")
    (data / rel).write_bytes(body[: len(body) // 3])  # passes the header check, fails to decode
    (data / _pick(frame, "generated", "test")).write_bytes((data / _pick(frame, "generated", "val")).read_bytes())
    assert main(["evaluate", "--profile", "smoke"]) == 1
    _clean_error(capsys.readouterr().err, rel, "data")
    assert main(["predict", "--profile", "smoke", str(data / rel)]) == 1
    err = capsys.readouterr().err
    assert "truncated or corrupt" in err and "`python -m helpers data --profile smoke` re-makes it" in err


def test_generate_remakes_damaged_images_from_their_seeds(study):
    data, frame = study
    junk, both = frame[(frame.label_name == "generated") & (frame.split == "train")].path.iloc[:2]
    before = {p: (data / p).read_bytes() for p in (junk, both)}
    (data / junk).write_bytes(b"junk")
    raw = data / "smoke" / "raw" / "generated" / "train" / (both.rsplit("/", 1)[1][:-4] + ".png")
    raw.write_bytes(raw.read_bytes()[:200])  # the model's output is damaged too: generated again
    (data / both).unlink()
    assert main(["generate", "--profile", "smoke", *DATA]) == 0
    assert (data / junk).read_bytes() == before[junk]  # converted again from the model's output
    # generated again, alone instead of in a batch of 4: the same seed gives the same picture, up to
    # the last bits of floating point (a batch's matrix products are summed in another order)
    again, first = (np.asarray(Image.open(io.BytesIO(b)), dtype=float)
                    for b in ((data / both).read_bytes(), before[both]))
    assert np.abs(again - first).mean() < 1.0


def test_the_data_step_remakes_damaged_photographs(data_root, coco_mirror, capsys):
    assert main(["data", "--profile", "course", *SETS]) == 0
    frame = mf.load("course")
    plan = pd.read_csv(data_root / "course" / "plan_real.csv").set_index("coco_id")
    first, second = frame.path.iloc[0], frame.path.iloc[1]
    before = {p: (data_root / p).read_bytes() for p in (first, second)}
    (data_root / first).write_bytes(b"junk")  # the prepared file only: made again from the original
    row = plan.loc[int(frame.coco_id.iloc[1])]
    raw = data_root / "coco" / row.coco_subset / row.file_name
    raw.write_bytes(raw.read_bytes()[:100])  # and the original behind the other: fetched again
    (data_root / second).write_bytes(b"")
    requests = len(coco_mirror.requests)
    capsys.readouterr()
    assert main(["data", "--profile", "course", *SETS]) == 0
    assert {p: (data_root / p).read_bytes() for p in (first, second)} == before
    assert [p for p, _ in coco_mirror.requests[requests:]] == [f"/{row.coco_subset}/{row.file_name}"]
    assert f"re-making {first}" in capsys.readouterr().out
    assert len(mf.load("course")) == sum(COUNTS[k] for k in ("real_train", "real_val", "real_test"))
