"""Chapter 4: a training run made ready: seeds, deterministic algorithms, the model on its device, its optimizer and loaders.

The paper's recipe: Adam at ``train_lr``, binary cross-entropy, the global batch of
:mod:`helpers.classify.batches`. On a CPU the algorithms are always deterministic, so that a run
resumed after a stop ends with the same weights as one never stopped; on a GPU when asked.
"""

from __future__ import annotations

import random
from contextlib import contextmanager

import numpy as np
import pandas as pd
import torch
from torch.nn.parallel import DistributedDataParallel as DDP

from .batches import accumulation_steps
from .loaders import build_loaders
from .loop import autocast_dtype
from .models import build_model
from .trainer import Trainer


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also every GPU


@contextmanager
def determinism(device: torch.device, deterministic: bool):
    """Deterministic algorithms on a CPU always, on a GPU when asked (slower there); restored after."""
    before = (torch.are_deterministic_algorithms_enabled(),
              torch.is_deterministic_algorithms_warn_only_enabled(),
              torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic)
    on = deterministic or device.type != "cuda"
    torch.use_deterministic_algorithms(on, warn_only=True)
    torch.backends.cudnn.deterministic = on
    torch.backends.cudnn.benchmark = not on
    try:
        yield on
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = before[2], before[3]


def prepare_model(profile, world, resuming: bool) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(model to train, model itself): on the device, GPU settings applied, DDP-wrapped if needed.

    A resumed run builds with random weights (they are replaced by last.pt's), so it needs neither
    the network nor the pretrained file again.
    """
    raw = build_model(profile, pretrained="none" if resuming else None)
    if profile.train_grad_checkpointing:
        raw.set_grad_checkpointing(True)
    raw = raw.to(world.device)
    if profile.train_channels_last and world.device.type == "cuda":
        # GPU only: on a CPU it made ConvNeXt-XL's step slower (about 43 s instead of 28 s)
        raw = raw.to(memory_format=torch.channels_last)
    if profile.train_compile:
        raw.compile()  # in place: the state dict keeps its keys, DDP's no_sync stays outside
    model = raw
    if world.size > 1:
        model = DDP(raw, device_ids=[world.device.index] if world.device.type == "cuda" else None,
                    find_unused_parameters=False)
    return model, raw


def setup(profile, world, control: bool, train_rows: pd.DataFrame, val_rows: pd.DataFrame,
          settings: dict, resuming: bool) -> Trainer:
    """The run's state at its start: seeded, the model built, Adam, the loaders of this process."""
    seed_everything(profile.seed)
    model, raw = prepare_model(profile, world, resuming)
    # fused on CUDA (one kernel for all parameters; the state dict's layout is the same, so last.pt
    # resumes); a CPU keeps the default implementation, and with it the exact results of earlier runs
    optimizer = torch.optim.Adam(model.parameters(), lr=profile.train_lr,
                                 weight_decay=profile.train_weight_decay, fused=world.device.type == "cuda")
    amp_dtype = autocast_dtype(profile, world.device)
    scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None
    train_loader, val_loader, sampler = build_loaders(profile, world, raw, train_rows, val_rows)
    return Trainer(profile=profile, world=world, control=control, model=model, raw=raw,
                   optimizer=optimizer, scaler=scaler, amp_dtype=amp_dtype,
                   accum=accumulation_steps(profile, world.size), train_loader=train_loader,
                   val_loader=val_loader, sampler=sampler, settings=settings)
