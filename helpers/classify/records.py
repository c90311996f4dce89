"""Chapter 4: what a training run records: its settings, ``config.json``, ``metrics.csv``, TensorBoard, its log lines.

``metrics.csv`` has one row per finished epoch (losses, accuracies, time, images/s, and the peak
memory: on a GPU what PyTorch allocated on rank 0's device, on a CPU the rank-0 process's peak
resident size); the chapter's curves and Table 3's cost columns are read from it. The settings
say what a run computes: a run resumed with other values would mix two experiments, so it is
refused with the difference named.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

import pandas as pd

from ..core.files import atomic_write_text
from .trainer import Trainer, TrainError

METRICS = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds", "images_per_s",
           "peak_memory_mb"]
# Settings that change how a run is computed, not what it computes: a run may resume with others.
RUNTIME_ONLY = ("train_epochs", "train_patience", "train_micro_batch", "train_workers",
                "train_channels_last", "train_compile", "train_grad_checkpointing", "train_checkpoint_minutes",
                "train_keep_finished_optimizer")


def _digest(rows: pd.DataFrame) -> str:
    text = "\n".join(f"{p},{int(lab)}" for p, lab in sorted(zip(rows.path, rows.label)))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def run_settings(profile, control: bool, train_rows: pd.DataFrame, val_rows: pd.DataFrame,
                 variant: str | None = None) -> dict:
    """What a run computes: resuming with other values would mix two experiments. A control's run
    (``variant``) says which; the paper's runs keep the settings they always had."""
    out = {k: v for k, v in profile.as_dict().items() if k.startswith("train_") and k not in RUNTIME_ONLY}
    return out | dict(seed=profile.seed, control=bool(control), train_images=len(train_rows),
                      train_rows=_digest(train_rows), val_images=len(val_rows), val_rows=_digest(val_rows)) \
        | ({"variant": variant} if variant else {})


def check_settings(old: dict, new: dict, where: Path) -> None:
    diff = {k: (old.get(k), new.get(k)) for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)}
    if diff:
        changes = ", ".join(f"{k}: {a!r} there, {b!r} now" for k, (a, b) in diff.items())
        raise TrainError(f"the run in {where} was started with other settings ({changes}). Delete "
                         f"{where} to train afresh with the new ones, or run with the settings in its "
                         f"config.json; BOOK_RESULTS_ROOT can point elsewhere to keep both")


def write_config(profile, world, control: bool, deterministic: bool, settings: dict, out: Path,
                 from_epoch: int) -> None:
    """config.json: the profile, and one entry per launch (world size, command, start epoch)."""
    path = out / "config.json"
    launches = json.loads(path.read_text(encoding="utf-8")).get("launches", []) if path.exists() else []
    launches.append(dict(world_size=world.size, device=str(world.device), from_epoch=from_epoch,
                         deterministic=deterministic, command=" ".join(sys.argv),
                         time=time.strftime("%Y-%m-%d %H:%M:%S")))
    config = dict(run=out.name, profile=profile.as_dict(), settings=settings, world_size=world.size,
                  command=" ".join(sys.argv), launches=launches)
    atomic_write_text(path, json.dumps(config, indent=2, default=str))


def write_metrics(history: list[dict], path: Path) -> pd.DataFrame:
    """The whole table, rewritten atomically (one row per finished epoch)."""
    frame = pd.DataFrame(history, columns=METRICS)
    atomic_write_text(path, frame.to_csv(index=False))
    return frame


def log_tensorboard(folder: Path, row: dict) -> None:
    """The epoch's numbers as TensorBoard scalars too, when TensorBoard is installed
    (``tensorboard --logdir results/<profile>/train``); metrics.csv stays the record."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # lazily, and only if installed
    except ImportError:
        return
    with SummaryWriter(log_dir=str(folder / "tensorboard")) as writer:
        for key, value in row.items():
            if key != "epoch" and isinstance(value, (int, float)):
                writer.add_scalar(key, value, row["epoch"])


def start_line(tr: Trainer, out: Path) -> str:
    """What the run trains, on what, with which batch (printed once per launch)."""
    p, world = tr.profile, tr.world
    return (f"train {out.name} on profile '{p.name}': {p.train_model} ({p.train_head} head, "
            f"{sum(x.numel() for x in tr.raw.parameters()) / 1e6:.1f} M parameters), "
            f"{tr.settings['train_images']} training and {tr.settings['val_images']} validation images, "
            f"{world.size} process(es) on {world.device}, global batch {p.train_batch} = "
            f"{p.train_micro_batch} x {world.size} x {tr.accum} micro-steps"
            + (f"; resuming after epoch {tr.epoch}" if tr.epoch else "")
            + (f", in epoch {tr.epoch + 1} after step {tr.step_in_epoch} (a save in mid-epoch)"
               if tr.step_in_epoch else ""))


def epoch_line(tr: Trainer, improved: bool) -> str:
    """The finished epoch's numbers, as printed."""
    row = tr.history[-1]
    return (f"epoch {row['epoch']}/{tr.profile.train_epochs}: train loss {row['train_loss']:.4f} "
            f"acc {row['train_acc']:.3f} | val loss {row['val_loss']:.4f} acc {row['val_acc']:.3f}"
            f"{' (best)' if improved else ''} | {row['images_per_s']:.1f} images/s, {row['seconds']:.1f} s")
