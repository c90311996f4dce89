"""Chapter 4: the images a run trains and validates on, and how each process reads its share.

Training reads Chapter 2's set (the paper's way, or with ``--control`` the both-classes control),
else the manifest's training split when no augmented rows exist yet; validation reads the
manifest's ``val`` split (originals only). A training-time control (``--variant NAME``) reads
both from its own rows (:mod:`helpers.classify.controls_data`). Both go through the model's own input transform
(:mod:`helpers.classify.transform`), the one evaluation uses too.
"""

from __future__ import annotations

import itertools
import random

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, DistributedSampler, Sampler

from ..augment import AugmentError, training_set
from ..data import controls as ctl
from ..data import manifest as mf
from .dataset import ManifestDataset
from .trainer import TrainError
from .transform import model_input


def training_rows(profile, frame: pd.DataFrame, control: bool = False) -> pd.DataFrame:
    """The training rows: Chapter 2's set (paper or control), or the plain training split."""
    if control:
        try:
            return training_set(frame, profile, control=True)
        except AugmentError as exc:
            raise TrainError(f"--control trains on the both-classes augmented set: {exc}") from None
    # without Chapter 2's rows this is the training split as it is;
    # training_set leaves out augmented photographs (the control's), which the paper did not have
    return training_set(frame, profile, control=False)


def variant_rows(profile, variant: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training rows, validation rows) of a control of Chapter 4 (``train --variant NAME``), as the
    ``controls`` step listed them: the same images as the paper's set-up with one class re-made."""
    try:
        rows = ctl.load_rows(profile, variant)
    except ctl.ControlError as exc:
        raise TrainError(f"--variant {variant}: {exc}") from None
    return (rows[rows.split == "train"].reset_index(drop=True),
            rows[rows.split == "val"].reset_index(drop=True))


def validation_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The validation split, without augmented copies."""
    val = mf.originals(frame)
    return val[val.split == "val"].reset_index(drop=True)


def datasets(profile, model: torch.nn.Module, train_rows: pd.DataFrame,
             val_rows: pd.DataFrame) -> tuple[ManifestDataset, ManifestDataset]:
    """The training and validation sets, each image as ``model`` takes it at ``train_img_size``."""
    transform = model_input(model, profile.train_img_size)
    return ManifestDataset(train_rows, transform=transform), ManifestDataset(val_rows, transform=transform)


class ShardSampler(Sampler):
    """Indices ``rank, rank + size, ...``: disjoint shards that together hold every index once.

    For evaluation: unlike ``DistributedSampler`` it never repeats an image to even the shards out,
    so sums over the processes count every validation image exactly once.
    """

    def __init__(self, n: int, rank: int, size: int):
        self.indices = list(range(rank, n, size))

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


class ResumableSampler(DistributedSampler):
    """``DistributedSampler`` that can leave out the first ``skip`` indices of this epoch's shard:
    the images a save in mid-epoch already trained (:mod:`helpers.classify.preemption`)."""

    skip = 0
    with_epoch = False  # yield (index, epoch) pairs: robust training's per-sample draws (robust_training)

    def __iter__(self):
        kept = itertools.islice(super().__iter__(), self.skip, None)
        return ((i, self.epoch) for i in kept) if self.with_epoch else kept

    def __len__(self) -> int:
        return max(0, super().__len__() - self.skip)


def train_sampler(dataset, profile, world) -> DistributedSampler:
    """Shuffled shards, one per process, reshuffled every epoch from ``seed`` and the epoch.

    ``drop_last=False`` keeps every image; when the count does not divide by the number of
    processes a few are repeated so that every process takes the same number of steps.
    """
    return ResumableSampler(dataset, num_replicas=world.size, rank=world.rank, shuffle=True,
                            seed=profile.seed, drop_last=False)


def robust_training(loader: DataLoader, sampler: ResumableSampler, augment) -> None:
    """Chapter 6: ``augment(img, epoch, index)`` (CNNDetection's blur + JPEG) on every training image
    of either class. The sampler, which lives in the main process and knows the epoch
    (``set_epoch``), hands each worker ``(index, epoch)``: the draws depend on those and the seed
    alone, so a run resumed in mid-epoch sees the very images it would have seen. Call it before
    the loader's first epoch (its workers copy the dataset when they start)."""
    loader.dataset.augment = augment
    sampler.with_epoch = True


def seed_worker(worker_id: int) -> None:
    # torch seeds each worker with base_seed + id (the base drawn from the loader's own generator,
    # seeded from the seed and the epoch: the same after a restart, and the global RNG untouched);
    # numpy and random follow it, so a worker's draws are the same after a restart.
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def make_loader(dataset, sampler, profile, device: torch.device) -> DataLoader:
    workers = profile.train_workers
    return DataLoader(dataset, batch_size=profile.train_micro_batch, sampler=sampler,
                      num_workers=workers, pin_memory=device.type == "cuda",
                      persistent_workers=workers > 0, worker_init_fn=seed_worker, drop_last=False,
                      generator=torch.Generator())


def build_loaders(profile, world, model: torch.nn.Module, train_rows: pd.DataFrame,
            val_rows: pd.DataFrame) -> tuple[DataLoader, DataLoader, DistributedSampler]:
    """(training loader, validation loader, training sampler) of this process."""
    train_set, val_set = datasets(profile, model, train_rows, val_rows)
    sampler = train_sampler(train_set, profile, world)
    return (make_loader(train_set, sampler, profile, world.device),
            make_loader(val_set, ShardSampler(len(val_set), world.rank, world.size), profile, world.device),
            sampler)
