"""Chapter 4: a run's checkpoints: ``last.pt`` to go on after a stop, ``best.pt`` for evaluation.

``last.pt`` holds everything a restart needs (weights, optimizer, scaler, counters, history and
every random generator's state), so that on a CPU a run stopped at any moment ends with the same
metrics and weights as a run never stopped. ``best.pt`` holds the weights of the lowest
validation loss. Both are written atomically and read with ``weights_only=True``.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import numpy as np
import torch

from ..core.files import atomic_torch_save
from .trainer import Trainer, TrainError


def rng_state() -> dict:
    """Every random generator's state, as tensors and lists (loadable with weights_only=True)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return dict(torch=torch.get_rng_state(),
                cuda=torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                numpy=dict(name=name, keys=torch.from_numpy(keys.astype(np.int64)), pos=int(pos),
                           has_gauss=int(has_gauss), cached=float(cached)),
                python=[version, list(internal), gauss_next])


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"][:torch.cuda.device_count()])
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))


def load_checkpoint(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise TrainError(f"{path} cannot be read with weights_only=True ({type(exc).__name__}: "
                         f"{str(exc)[:300]}); delete it to start this run afresh") from None


def save_last(tr: Trainer, path: Path, finished: bool = False) -> None:
    """Everything a restart needs: weights, optimizer, scaler, counters, history, RNG states. A
    ``finished`` run without ``train_keep_finished_optimizer`` keeps no optimizer state (AdamW's two
    moments: twice the weights), which only a longer run would read."""
    slim = finished and not tr.profile.train_keep_finished_optimizer
    atomic_torch_save(dict(model=tr.raw.state_dict(), optimizer=None if slim else tr.optimizer.state_dict(),
                           scaler=tr.scaler.state_dict() if tr.scaler is not None and not slim else {},
                           epoch=tr.epoch, sampler_epoch=tr.epoch, best_val_loss=tr.best_val_loss,
                           best_epoch=tr.best_epoch, epochs_without_improvement=tr.wait,
                           history=tr.history, rng=rng_state(), world_size=tr.world.size,
                           settings=tr.settings, step_in_epoch=tr.step_in_epoch,
                           partial=tr.partial if tr.partial is not None else torch.zeros(3, dtype=torch.float64),
                           partial_seconds=tr.partial_seconds), path)


def save_best(tr: Trainer, path: Path) -> None:
    atomic_torch_save(dict(model=tr.raw.state_dict(), epoch=tr.epoch, val_loss=tr.best_val_loss,
                           head=tr.head, train_model=tr.profile.train_model, settings=tr.settings), path)


def restore(tr: Trainer, ckpt: dict) -> None:
    """Continue from ``last.pt``: weights, optimizer, scaler, counters, RNG states, and how far into
    an epoch a save in mid-epoch got."""
    tr.raw.load_state_dict(ckpt["model"])
    if ckpt["optimizer"] is not None:  # None: a finished run saved without it (train.py checks it stays finished)
        tr.optimizer.load_state_dict(ckpt["optimizer"])
    for group in tr.optimizer.param_groups:  # Adam's implementation follows this device, not the saver's
        group["fused"] = tr.world.device.type == "cuda"
    if tr.scaler is not None and ckpt["scaler"]:
        tr.scaler.load_state_dict(ckpt["scaler"])
    tr.epoch, tr.best_val_loss = int(ckpt["epoch"]), float(ckpt["best_val_loss"])
    tr.best_epoch, tr.wait = int(ckpt["best_epoch"]), int(ckpt["epochs_without_improvement"])
    tr.history = list(ckpt["history"])
    set_rng_state(ckpt["rng"])
    tr.step_in_epoch = int(ckpt.get("step_in_epoch", 0))  # older checkpoints: saved at epoch ends only
    if tr.step_in_epoch:
        tr.partial, tr.partial_seconds = ckpt["partial"], float(ckpt["partial_seconds"])
    if tr.step_in_epoch and int(ckpt.get("world_size", tr.world.size)) != tr.world.size:
        # another number of processes shards the epoch's images otherwise: redo the epoch whole
        tr.step_in_epoch, tr.partial, tr.partial_seconds = 0, None, 0.0


def room_needed(tr: Trainer, out: Path) -> int:
    """Bytes a run's checkpoints still need in ``out``: ``best.pt`` (the weights), ``last.pt`` (the
    weights and AdamW's two moments, so three times) and a second ``last.pt`` while it is written
    atomically, less what the files there already take."""
    weights = sum(t.numel() * t.element_size() for t in tr.raw.state_dict().values())
    existing = sum(p.stat().st_size for p in (out / "best.pt", out / "last.pt") if p.exists())
    return max(0, weights + 2 * 3 * weights - existing)


def check_room(tr: Trainer, out: Path) -> None:
    """Stop before the first epoch, not after hours of it, when the checkpoints cannot be saved."""
    out.mkdir(parents=True, exist_ok=True)
    needed, free = room_needed(tr, out), shutil.disk_usage(out).free
    if needed > free:
        raise TrainError(f"{out} has {free / 1e9:.1f} GB free and this run's checkpoints need about "
                         f"{needed / 1e9:.1f} GB (best.pt, last.pt with the optimizer's state, and a "
                         f"copy of last.pt while it is saved): free some space there, or point "
                         f"BOOK_RESULTS_ROOT at a larger disk")

