"""Chapter 4: the state of a training run, and the error that stops one.

A run is a model (DDP-wrapped on several processes), its optimizer, its loaders, and the counters
that early stopping and resuming need. Every part of the loop reads and updates this one record,
and ``last.pt`` saves it whole, so a stopped run goes on where it was.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch.utils.data import DataLoader, DistributedSampler


class TrainError(RuntimeError):
    """The training step cannot run or go on; the message says why and what to do."""


@dataclass
class Trainer:
    profile: object
    world: object
    control: bool
    model: torch.nn.Module  # DDP-wrapped when there are several processes
    raw: torch.nn.Module  # the model itself: its state dict has no DDP prefix
    optimizer: torch.optim.Optimizer
    scaler: object
    amp_dtype: torch.dtype | None
    accum: int
    train_loader: DataLoader
    val_loader: DataLoader
    sampler: DistributedSampler
    settings: dict
    epoch: int = 0  # epochs finished
    best_val_loss: float = float("inf")
    best_epoch: int = 0
    wait: int = 0  # epochs without improvement
    history: list = field(default_factory=list)
    # a save in mid-epoch (helpers.classify.preemption): optimizer steps of epoch ``epoch + 1``
    # already trained, the float64 [loss sum, correct, images] of those steps over all processes,
    # and the seconds they took
    step_in_epoch: int = 0
    partial: torch.Tensor | None = None
    partial_seconds: float = 0.0

    @property
    def channels_last(self) -> bool:
        return bool(self.profile.train_channels_last) and self.world.device.type == "cuda"

    @property
    def head(self) -> str:
        return self.profile.train_head
