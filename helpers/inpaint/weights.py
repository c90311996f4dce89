"""Chapter 3: the published weights of partial convolution and DeepFill v2, fetched once, checked always.

Where they come from (each author's own link, read in their repositories):

- **pconv**: the checkpoint of ``naoto0804/pytorch-inpainting-with-partial-conv`` (the re-implementation
  whose layout :mod:`helpers.inpaint.pconv` follows), linked from its ``README.md`` ("The model is
  available here", Google Drive id ``1SYjJ-Vlu2cpAlgBG5FiJueN9W4lf48w8``): 500,000 iterations on
  Places2, then 500,000 of fine-tuning with the encoder's BatchNorm frozen; its author does not
  vouch for its quality. A dict with the U-Net's state under ``"model"`` (and ``"n_iter"``,
  ``"optimizer"``), as its ``train.py`` saves it (there named ``1000000.pth``, after the iteration;
  the cache names it after its origin, since a bare number says nothing in a shared folder).
- **deepfill_v2**: ``states_tf_places2.pth`` of ``nipponjo/deepfillv2-pytorch``, listed in its
  ``download_files.py`` (Drive id ``1tvdQRmkphJK7FYveNAKSMWC6K09hJoyt``): the official TensorFlow
  Places2 weights (JiahuiYu/generative_inpainting v2.0.0) converted to a PyTorch state dict under
  ``"G"``, for ``model/networks_tf.py`` (:class:`helpers.inpaint.deepfill.GeneratorTF`). The design
  takes the converted originals, not the port's fine-tuned ``states_pt_places2.pth``.

Where they go: the torch-hub checkpoints cache, ``Path(torch.hub.get_dir()) / "checkpoints"``
(``$TORCH_HOME/hub/checkpoints``), beside pytorch-fid's Inception weights, so that one setting moves
every downloaded network and one download serves every profile and every clone of the book.

Trust on first use. Neither author publishes a checksum. The first fetch goes to a temporary file
(:func:`helpers.core.files.atomic_write`) and is loaded (``weights_only=True``) strictly into its
network, so a Drive error page or another model's file never lands in the cache; only then is its
sha256 written beside it (``<file>.sha256``, in ``sha256sum``'s format) and the file moved into
place. Every later use compares the file with
that record, so a file that changed (a broken copy, an edit) is refused instead of silently giving
other fills. A file the user put there by hand is checked the same way on first use and recorded.

Which weights a profile uses (:func:`checkpoint_for`): the settings ``pconv_checkpoint`` and
``deepfill_checkpoint`` hold a path or URL (an explicit override), ``"random"`` (seeded random
weights), ``"published"``, or nothing. Nothing means the published weights, fetched on first use,
except in ``smoke``: there it means random weights, so that smoke runs offline and never fetches
(its fills are pipeline checks); ``"published"`` asks for the real weights in smoke too.

Offline, :func:`published_weights` raises :class:`WeightsUnavailable`, whose message names the file,
its Drive id and the two ways to add it by hand; the inpaint step then skips that model, and Chapter
3 says so, instead of stopping the chapter.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import torch

from ..core.checkpoints import CheckpointError
from ..core.download import file_digest
from ..core.files import atomic_write, atomic_write_text
from .deepfill import GeneratorTF, load_generator
from .pconv import PConvUNet, load_checkpoint

RANDOM = "random"  # a setting's value for seeded random weights (what smoke runs)
PUBLISHED_WEIGHTS = "published"  # a setting's value for the published weights in any profile, smoke too


@dataclass(frozen=True)
class Published:
    """One published checkpoint: its cache name, its Drive id, where the id is published."""

    file: str
    drive_id: str
    source: str
    setting: str
    layout: str


PUBLISHED = {
    "pconv": Published(
        file="pconv_naoto0804_places2_1000000.pth",
        drive_id="1SYjJ-Vlu2cpAlgBG5FiJueN9W4lf48w8",
        source="README.md of github.com/naoto0804/pytorch-inpainting-with-partial-conv",
        setting="pconv_checkpoint",
        layout="naoto0804 PConvUNet, state under 'model'"),
    "deepfill_v2": Published(
        file="states_tf_places2.pth",
        drive_id="1tvdQRmkphJK7FYveNAKSMWC6K09hJoyt",
        source="download_files.py of github.com/nipponjo/deepfillv2-pytorch",
        setting="deepfill_checkpoint",
        layout="nipponjo model/networks_tf.py, state under 'G'"),
}


class WeightsUnavailable(RuntimeError):
    """The published weights could not be fetched (offline, Drive refused); the message says how to
    add them by hand."""


def published(model: str) -> Published:
    if model not in PUBLISHED:
        raise ValueError(f"no published weights for {model!r}; known: {', '.join(PUBLISHED)}")
    return PUBLISHED[model]


def cache_path(model: str) -> Path:
    """Where ``model``'s published checkpoint lives: the torch-hub checkpoints cache."""
    return Path(torch.hub.get_dir()) / "checkpoints" / published(model).file


def record_path(path: Path) -> Path:
    """The sha256 recorded when ``path`` was first fetched (or first used, if put there by hand)."""
    return path.with_name(path.name + ".sha256")


def drive_url(model: str) -> str:
    return f"https://drive.google.com/uc?id={published(model).drive_id}"


def shown(path: Path) -> str:
    """``path`` as a reader can use it anywhere: under ``$TORCH_HOME`` or ``~``, not this machine's."""
    path = Path(path)
    for prefix, base in (("$TORCH_HOME", os.environ.get("TORCH_HOME")), ("~", str(Path.home()))):
        if base and path.is_relative_to(Path(base).expanduser()):
            return f"{prefix}/{path.relative_to(Path(base).expanduser()).as_posix()}"
    return str(path)


def checkpoint_for(model: str, profile) -> str | Path | None:
    """What ``model`` loads in ``profile``: None (random weights), the setting's path or URL, or the
    published file (fetched and checked by :func:`published_weights`)."""
    value = getattr(profile, published(model).setting)
    if value == RANDOM or (not value and profile.name == "smoke"):
        return None
    if value in ("", PUBLISHED_WEIGHTS):
        return published_weights(model)
    return value


def published_weights(model: str) -> Path:
    """The checked published checkpoint of ``model``: fetched on first use, its sha256 verified."""
    path = cache_path(model)
    if not path.exists():
        return fetch(model, path)
    if record_path(path).exists():
        check_record(model, path)
    else:
        adopt(model, path)
    return path


def adopt(model: str, path: Path) -> None:
    """A file the user put at the cache path by hand: checked like a fetched one, then recorded."""
    require_layout(model, path, f"{shown(path)} (not fetched by the book, no sha256 recorded yet)",
                   ". Delete it to fetch the published file, or put that file there.")
    write_record(path, path)


def require_layout(model: str, path: Path, subject: str, then: str) -> None:
    """:func:`check_layout`, its refusal saying which file (``subject``) and what now (``then``)."""
    try:
        check_layout(model, path)
    except CheckpointError as exc:
        raise CheckpointError(f"{subject} is not the checkpoint expected ({published(model).layout})"
                              f"{then} {exc}") from None


def download(drive_id: str, output: BinaryIO) -> None:
    """One Google Drive file through gdown (it passes Drive's confirmation page for large files),
    written into the open file ``output``."""
    import gdown

    if gdown.download(id=drive_id, output=output, quiet=False) is None:
        raise OSError(f"gdown could not download Drive file {drive_id}")


def fetch(model: str, path: Path) -> Path:
    """Download into a temporary file beside ``path``, check the layout, record the sha256, then
    move it into place; a refused or broken-off download leaves nothing in the cache."""
    def download_checked(fh: BinaryIO) -> None:
        try:
            download(published(model).drive_id, fh)
        except Exception as exc:  # noqa: BLE001 -- offline, Drive's quota page, refused: all "not now"
            raise WeightsUnavailable(offline_message(model, exc)) from None
        fh.flush()
        fetched = Path(fh.name)
        require_layout(model, fetched, f"the file fetched from {drive_url(model)} for {model}",
                       "; it was not kept.")
        write_record(fetched, path)

    atomic_write(path, download_checked)
    return path


def offline_message(model: str, exc: Exception) -> str:
    pub = published(model)
    first_line = (str(exc).strip().splitlines() or [""])[0][:200]
    reason = f"{type(exc).__name__}: {first_line}" if first_line else type(exc).__name__
    return (f"{model}: its published weights could not be fetched ({reason}).\n"
            f"  file: {pub.file}, from {drive_url(model)} (Google Drive id {pub.drive_id}, "
            f"listed in {pub.source})\n"
            f"  to add it by hand: download it and put it at {shown(cache_path(model))} (checked and "
            f"recorded on first use), or give any copy with --set {pub.setting}=PATH")


def check_layout(model: str, path: Path) -> None:
    """Load ``path`` strictly into ``model``'s network (weights_only=True); CheckpointError if not."""
    if model == "pconv":
        load_checkpoint(PConvUNet(init_weights=False), path)
        return
    generator = load_generator(path)
    if not isinstance(generator, GeneratorTF):
        raise CheckpointError(f"{path.name} holds a DeepFill v2 generator of model/{generator.layout}; "
                              f"{published(model).file} is the converted TensorFlow weights, for "
                              f"model/networks_tf.py")


def write_record(checked: Path, path: Path) -> None:
    """Record the sha256 of ``checked`` (the file that passed the layout check) for ``path``."""
    atomic_write_text(record_path(path), f"{file_digest(checked, 'sha256')}  {path.name}\n")


def check_record(model: str, path: Path) -> None:
    """Refuse ``path`` if its sha256 is not the one recorded when it was first fetched and checked."""
    record = record_path(path)
    expected = (record.read_text().split() or [""])[0]
    found = file_digest(path, "sha256")
    if found != expected:
        raise CheckpointError(
            f"{shown(path)} has sha256 {found[:16]}..., not the {expected[:16] or '(empty)'}... recorded "
            f"in {record.name} when it was first fetched and checked: the file has changed since. "
            f"Delete {path.name} and {record.name} to fetch it again, or give a copy you trust with "
            f"--set {published(model).setting}=PATH.")
