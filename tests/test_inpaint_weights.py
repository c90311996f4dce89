"""The published inpainting weights (helpers.inpaint.weights): where they go, the first fetch, the
sha256 record and its check, hand-placed files, the offline message, and which weights a profile
loads. Offline: the Drive download is replaced by a stand-in; the rehearsal's stand-in checkpoints
(helpers.rehearsal.checkpoints) are the real architectures in the published layouts."""

from __future__ import annotations

from pathlib import Path

import gdown
import pytest
import torch

from helpers.inpaint import weights as iw
from helpers.core.checkpoints import CheckpointError
from helpers.inpaint.deepfill import Generator
from helpers.inpaint.step import build
from helpers.core.profiles import get_profile
from helpers.rehearsal.checkpoints import deepfill_checkpoint, place_standin_checkpoints


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    home = tmp_path / "torch-home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    return home


@pytest.fixture
def no_download(monkeypatch):
    """Fails the test if anything tries to fetch."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"unexpected download {args} {kwargs}")
    monkeypatch.setattr(gdown, "download", refuse)


@pytest.fixture
def drive(monkeypatch):
    """Stands in for Google Drive: gdown.download writes ``drive.files[id]`` (bytes) to ``output``
    (an open file, as the book passes it, or a path)."""
    class Drive:
        def __init__(self):
            self.files: dict[str, bytes] = {}
            self.calls: list[str] = []

        def download(self, *, id, output, quiet=False, **kwargs):
            self.calls.append(id)
            if id not in self.files:
                raise gdown.exceptions.FileURLRetrievalError("Failed to retrieve file url")
            if isinstance(output, str):
                Path(output).write_bytes(self.files[id])
            else:
                output.write(self.files[id])
            return output

    drive = Drive()
    monkeypatch.setattr(gdown, "download", drive.download)
    return drive


def _bytes(checkpoint: dict) -> bytes:
    import io
    buf = io.BytesIO()
    torch.save(checkpoint, buf)
    return buf.getvalue()


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_cache_path_is_in_the_torch_hub_checkpoints_cache(torch_home):
    assert iw.cache_path("deepfill_v2") == torch_home / "hub" / "checkpoints" / "states_tf_places2.pth"
    assert iw.cache_path("pconv").parent == torch_home / "hub" / "checkpoints"
    assert iw.shown(iw.cache_path("deepfill_v2")) == "$TORCH_HOME/hub/checkpoints/states_tf_places2.pth"
    assert iw.drive_url("deepfill_v2") == "https://drive.google.com/uc?id=1tvdQRmkphJK7FYveNAKSMWC6K09hJoyt"
    assert iw.drive_url("pconv") == "https://drive.google.com/uc?id=1SYjJ-Vlu2cpAlgBG5FiJueN9W4lf48w8"


def test_course_builds_pconv_and_deepfill_from_the_published_files_then_refuses_a_changed_one(
        torch_home, no_download):
    """(a) The stand-ins at the real addresses; no --set; sha256 recorded; tampering refused."""
    placed = place_standin_checkpoints()
    assert placed == [iw.cache_path("pconv"), iw.cache_path("deepfill_v2")]
    course = get_profile("course")
    pconv, deepfill = build("pconv", course, "cpu"), build("deepfill_v2", course, "cpu")
    stored = torch.load(placed[0], weights_only=True)["model"]
    assert torch.equal(pconv.model.state_dict()["enc_3.conv.input_conv.weight"],
                       stored["enc_3.conv.input_conv.weight"])
    stored = torch.load(placed[1], weights_only=True)["G"]
    assert type(deepfill.model).__name__ == "GeneratorTF"
    assert torch.equal(deepfill.model.state_dict()["allconv11.conv.weight"], stored["allconv11.conv.weight"])
    for path in placed:
        record = iw.record_path(path).read_text().split()
        assert record == [iw.file_digest(path, "sha256"), path.name]

    with open(placed[1], "r+b") as fh:  # one byte changed, deep inside the weights
        fh.seek(placed[1].stat().st_size // 2)
        byte = fh.read(1)
        fh.seek(-1, 1)
        fh.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(CheckpointError) as err:
        build("deepfill_v2", course, "cpu")
    message = str(err.value)
    assert "$TORCH_HOME/hub/checkpoints/states_tf_places2.pth has sha256" in message
    assert "Delete states_tf_places2.pth and states_tf_places2.pth.sha256 to fetch it again" in message
    assert str(torch_home) not in message


def test_first_fetch_checks_the_layout_records_the_sha256_and_moves_into_place(torch_home, drive):
    drive.files[iw.PUBLISHED["deepfill_v2"].drive_id] = _bytes(deepfill_checkpoint(seed=3))
    path = iw.published_weights("deepfill_v2")
    assert drive.calls == ["1tvdQRmkphJK7FYveNAKSMWC6K09hJoyt"]
    assert path == iw.cache_path("deepfill_v2") and path.read_bytes() == drive.files[drive.calls[0]]
    assert iw.record_path(path).read_text() == f"{iw.file_digest(path, 'sha256')}  states_tf_places2.pth\n"
    assert _leftovers(path.parent) == []
    assert iw.published_weights("deepfill_v2") == path and len(drive.calls) == 1  # no second fetch


@pytest.mark.parametrize("content, reason", [
    (b"<html>Google Drive - Quota exceeded</html>", "cannot be read as a PyTorch checkpoint"),
    ("networks.py", "model/networks.py"),  # the fine-tuned file's layout, not the converted one
])
def test_a_fetched_file_that_is_not_the_checkpoint_is_not_kept(torch_home, drive, content, reason):
    if content == "networks.py":
        content = _bytes({"G": Generator().state_dict()})
    drive.files[iw.PUBLISHED["deepfill_v2"].drive_id] = content
    with pytest.raises(CheckpointError, match="it was not kept") as err:
        iw.published_weights("deepfill_v2")
    assert reason in str(err.value) and "https://drive.google.com/uc?id=1tvdQRmk" in str(err.value)
    folder = iw.cache_path("deepfill_v2").parent
    assert list(folder.iterdir()) == []  # no file, no record, no temporary file


def test_a_file_put_there_by_hand_is_checked_then_recorded(torch_home, no_download):
    path = iw.cache_path("deepfill_v2")
    path.parent.mkdir(parents=True)
    path.write_bytes(_bytes({"G": {"conv1.conv.weight": torch.zeros(1)}}))
    with pytest.raises(CheckpointError, match="does not fit the DeepFill v2 generator") as err:
        iw.published_weights("deepfill_v2")
    assert str(err.value).startswith("$TORCH_HOME/hub/checkpoints/states_tf_places2.pth (not fetched")
    assert "Delete it to fetch the published file" in str(err.value)
    assert not iw.record_path(path).exists()
    path.write_bytes(_bytes(deepfill_checkpoint()))
    assert iw.published_weights("deepfill_v2") == path
    assert iw.record_path(path).read_text().split()[0] == iw.file_digest(path, "sha256")


def test_offline_the_message_names_the_file_the_drive_id_and_how_to_add_it(torch_home, drive):
    with pytest.raises(iw.WeightsUnavailable) as err:
        iw.published_weights("pconv")
    message = str(err.value)
    for part in ("pconv: its published weights could not be fetched (FileURLRetrievalError",
                 "pconv_naoto0804_places2_1000000.pth",
                 "Google Drive id 1SYjJ-Vlu2cpAlgBG5FiJueN9W4lf48w8",
                 "README.md of github.com/naoto0804/pytorch-inpainting-with-partial-conv",
                 "put it at $TORCH_HOME/hub/checkpoints/pconv_naoto0804_places2_1000000.pth",
                 "--set pconv_checkpoint=PATH"):
        assert part in message
    assert _leftovers(iw.cache_path("pconv").parent) == []


def test_which_weights_a_profile_loads(torch_home, no_download, tmp_path):
    smoke, course = get_profile("smoke"), get_profile("course")
    assert iw.checkpoint_for("pconv", smoke) is None  # smoke never fetches
    assert iw.checkpoint_for("pconv", get_profile("course", {"pconv_checkpoint": "random"})) is None
    mine = str(tmp_path / "mine.pth")
    assert iw.checkpoint_for("deepfill_v2", get_profile("course", {"deepfill_checkpoint": mine})) == mine
    place_standin_checkpoints()
    assert iw.checkpoint_for("deepfill_v2", course) == iw.cache_path("deepfill_v2")
    asked = get_profile("smoke", {"deepfill_checkpoint": "published"})
    assert iw.checkpoint_for("deepfill_v2", asked) == iw.cache_path("deepfill_v2")


def test_standins_never_replace_a_file_already_there(torch_home):
    path = iw.cache_path("deepfill_v2")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"the real file")
    assert place_standin_checkpoints()[1] == path and path.read_bytes() == b"the real file"
    assert iw.cache_path("pconv").exists()
