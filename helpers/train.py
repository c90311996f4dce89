"""The ``train`` step: fine-tune the classifier of Chapter 4, on one process or one per GPU.

``torchrun --nproc_per_node=N -m helpers train --profile P [--model KEY] [--control] [--set KEY=VALUE ...]``
(plain ``python`` is a world of one; ``python -m helpers.train ...`` takes the same arguments).

- data: the training rows of Chapter 2 (``augment.training_set``: the paper's way, or with
  ``--control`` the both-classes control), else the manifest's training split when no augmented
  rows exist yet; validation is the manifest's ``val`` split (originals only);
- the global batch ``train_batch`` is made of ``train_micro_batch`` images per process per
  micro-step, accumulated over ``train_batch / (train_micro_batch x processes)`` micro-steps, with
  the gradients synchronised between processes once per optimizer step (DDP ``no_sync``);
- the loss of an optimizer step is the mean over all its images, whatever the number of processes
  and micro-steps: 2 processes x 4 images give the step of 1 process x 8 images;
- each epoch trains, validates (metrics summed over processes), and rank 0 writes
  ``results/<profile>/train/<run>/``: ``metrics.csv``, ``last.pt`` (everything needed to go on)
  and ``best.pt`` (the weights of the lowest validation loss), each atomically;
- early stopping: training stops after ``train_patience`` epochs without a lower validation loss;
- a run stopped at any moment resumes from its last finished epoch when started again; on a CPU
  it ends with the same metrics and weights as a run never stopped. A finished run says so.

``<run>`` is ``paper`` or ``control`` for Chapter 4's model, and ``vgg16``, ``resnet50``,
``efficientnet_b0`` (``...-control``) for the other backbones of Table 3 (``--model``, Chapter 5:
:mod:`helpers.backbones`). ``metrics.csv`` also holds each epoch's peak memory: on a GPU what
PyTorch allocated on rank 0's device, on a CPU the rank-0 process's peak resident size.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import random
import sys
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, DistributedSampler, Sampler
from tqdm import tqdm

from . import backbones, distributed
from . import manifest as mf
from .models import build_model, data_config, loss_and_prob
from .paths import atomic_write_text, data_root, inside, results_root
from .profiles import add_profile_arguments

METRICS = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds", "images_per_s",
           "peak_memory_mb"]
# Settings that change how a run is computed, not what it computes: a run may resume with others.
RUNTIME_ONLY = ("train_epochs", "train_patience", "train_micro_batch", "train_workers",
                "train_channels_last", "train_compile", "train_grad_checkpointing")


class TrainError(RuntimeError):
    """The training step cannot run or go on; the message says why and what to do."""


# ---------------------------------------------------------------- where things go

def run_dir(profile, control: bool = False, model: str = backbones.DEFAULT) -> Path:
    """``results/<profile>/train/<run>``: ``paper``, ``control``, ``vgg16``, ``vgg16-control``..."""
    return results_root(profile.name) / "train" / backbones.run_name(model, control)


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory so far: PyTorch's allocations on a GPU, the process's resident size on a CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


# ---------------------------------------------------------------- data

def training_rows(profile, frame: pd.DataFrame, control: bool = False) -> pd.DataFrame:
    """The training rows: Chapter 2's set (paper or control), or the plain training split."""
    from .augment import AugmentError, training_set

    if control:
        try:
            return training_set(frame, profile, control=True)
        except AugmentError as exc:
            raise TrainError(f"--control trains on the both-classes augmented set: {exc}") from None
    # without Chapter 2's rows this is the training split as it is;
    # training_set leaves out augmented photographs (the control's), which the paper did not have
    return training_set(frame, profile, control=False)


def validation_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The validation split, without augmented copies."""
    val = mf.originals(frame)
    return val[val.split == "val"].reset_index(drop=True)


class ModelInput:
    """PIL image -> the model's input: resize (anti-aliased) to ``size``, [0, 1], normalised.

    The images are stored at 384 px already (the data step), so at 384 the resize is skipped.
    A class rather than a lambda so that DataLoader workers can pickle it. torchvision is imported
    here, not at the top: ``import helpers.train`` stays light for processes that only step.
    """

    def __init__(self, size: int, mean, std, interpolation: str = "bicubic"):
        self.size, self.mean, self.std = int(size), list(mean), list(std)
        self.interpolation = interpolation

    def __call__(self, img):
        from torchvision.transforms import InterpolationMode
        from torchvision.transforms.v2 import functional as TF

        x = TF.to_image(img)
        if tuple(x.shape[-2:]) != (self.size, self.size):
            x = TF.resize(x, [self.size, self.size], interpolation=InterpolationMode(self.interpolation),
                          antialias=True)
        x = TF.to_dtype(x, torch.float32, scale=True)
        return TF.normalize(x, self.mean, self.std)


def model_input(model, img_size: int) -> ModelInput:
    cfg = data_config(model)
    return ModelInput(img_size, cfg["mean"], cfg["std"], cfg.get("interpolation", "bicubic"))


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


def _seed_worker(worker_id: int) -> None:
    # torch seeds each worker with base_seed + id (the base drawn from the restored global RNG);
    # numpy and random follow it, so a worker's draws are the same after a restart.
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def make_loader(dataset, sampler, profile, device: torch.device) -> DataLoader:
    workers = profile.train_workers
    return DataLoader(dataset, batch_size=profile.train_micro_batch, sampler=sampler,
                      num_workers=workers, pin_memory=device.type == "cuda",
                      persistent_workers=workers > 0, worker_init_fn=_seed_worker, drop_last=False)


def train_sampler(dataset, profile, world) -> DistributedSampler:
    """Shuffled shards, one per process, reshuffled every epoch from ``seed`` and the epoch.

    ``drop_last=False`` keeps every image; when the count does not divide by the number of
    processes a few are repeated so that every process takes the same number of steps.
    """
    return DistributedSampler(dataset, num_replicas=world.size, rank=world.rank, shuffle=True,
                              seed=profile.seed, drop_last=False)


@dataclass(frozen=True)
class BatchPlan:
    """How the global batch is made on ``world`` processes: ``global_batch = micro_batch x world x
    accum``. ``note`` says what differs from the profile's settings, and why ('' when nothing)."""

    global_batch: int
    micro_batch: int
    accum: int
    note: str = ""


def batch_plan(profile, world_size: int) -> BatchPlan:
    """The profile's global batch split over ``world_size`` processes, or the nearest that splits.

    The micro-batch is lowered to the largest that divides each process's share (the same global
    batch, more micro-steps). Only a global batch smaller than, or not a multiple of, the number of
    processes cannot be kept (the paper's 4 on 8 GPUs): the nearest multiple is run, and said.
    """
    batch, micro, note = profile.train_batch, profile.train_micro_batch, ""
    if batch % world_size:
        nearest = world_size * max(1, round(batch / world_size))
        note = (f"the global batch of {batch} does not split over {world_size} processes; running "
                f"the nearest that does, {nearest} ({nearest // world_size} per process)")
        batch = nearest
    share = batch // world_size
    fits = max(d for d in range(1, min(share, micro) + 1) if share % d == 0)
    if fits != micro:
        note = note or (f"train_micro_batch={micro} does not split a share of {share} images per "
                        f"process; running micro-batches of {fits}")
    return BatchPlan(global_batch=batch, micro_batch=fits, accum=share // fits, note=note)


def accumulation_steps(profile, world_size: int) -> int:
    """Micro-steps per optimizer step; the global batch must split exactly (see :func:`batch_plan`)."""
    per_round = profile.train_micro_batch * world_size
    if profile.train_batch % per_round:
        raise TrainError(f"the global batch train_batch={profile.train_batch} does not split into "
                         f"train_micro_batch={profile.train_micro_batch} images x {world_size} "
                         f"processes x whole micro-steps")
    return profile.train_batch // per_round


# ---------------------------------------------------------------- one optimizer step

def autocast_dtype(profile, device: torch.device) -> torch.dtype | None:
    """Mixed precision on a GPU (bf16 or fp16); a CPU always runs float32."""
    if device.type != "cuda" or profile.train_precision == "fp32":
        return None
    return torch.bfloat16 if profile.train_precision == "bf16" else torch.float16


def _autocast(device: torch.device, dtype: torch.dtype | None):
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()


def accumulate(model, micro_batches, head: str, device: torch.device, *,
               amp_dtype: torch.dtype | None = None, scaler=None, channels_last: bool = False) -> torch.Tensor:
    """Forward and backward of one optimizer step's micro-batches of this process.

    Each image's loss is divided by the number of images of the step on this process; DDP then
    averages over the processes, which all hold the same number. So the gradient is the mean over
    the whole step, as one process with the whole batch would get. Under DDP the gradients are
    synchronised only on the last micro-batch (``no_sync`` before). Returns float64
    ``[loss sum, correct, images]`` of this process.
    """
    n_local = sum(len(y) for _, y in micro_batches)
    totals = torch.zeros(3, dtype=torch.float64, device=device)
    for i, (x, y) in enumerate(micro_batches):
        last = i == len(micro_batches) - 1
        sync = model.no_sync() if isinstance(model, DDP) and not last else nullcontext()
        x = x.to(device, non_blocking=True)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        y = torch.as_tensor(y).to(device, non_blocking=True)
        with sync:
            with _autocast(device, amp_dtype):
                logits = model(x)
            loss, prob = loss_and_prob(logits, y, head)
            step_loss = loss.sum() / n_local
            (scaler.scale(step_loss) if scaler is not None else step_loss).backward()
        totals += torch.stack([loss.detach().sum().double(), ((prob > 0.5).long() == y).sum().double(),
                               torch.tensor(float(len(y)), dtype=torch.float64, device=device)])
    return totals


def optimizer_step(optimizer, scaler=None) -> None:
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def all_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum over the processes (a no-op in a world of one)."""
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


# ---------------------------------------------------------------- the run's state

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

    @property
    def channels_last(self) -> bool:
        return bool(self.profile.train_channels_last) and self.world.device.type == "cuda"

    @property
    def head(self) -> str:
        return self.profile.train_head


def train_epoch(tr: Trainer, epoch: int) -> dict:
    """One pass over the training shards; returns the summed metrics of all processes."""
    tr.model.train()
    tr.sampler.set_epoch(epoch)
    totals = torch.zeros(3, dtype=torch.float64, device=tr.world.device)
    started = time.perf_counter()
    bar = tqdm(total=len(tr.train_loader), desc=f"epoch {epoch} train", unit="batch", leave=False,
               disable=not tr.world.is_main)
    group = []
    for batch in tr.train_loader:
        group.append(batch)
        if len(group) == tr.accum:
            totals += _step(tr, group)
            group = []
        bar.update(1)
    if group:  # the epoch's last, smaller step (same size on every process)
        totals += _step(tr, group)
    bar.close()
    if tr.world.device.type == "cuda":
        torch.cuda.synchronize(tr.world.device)
    seconds = time.perf_counter() - started
    loss_sum, correct, n = all_sum(totals).tolist()
    return dict(train_loss=loss_sum / n, train_acc=correct / n, train_images=int(n), train_seconds=seconds)


def _step(tr: Trainer, group) -> torch.Tensor:
    totals = accumulate(tr.model, group, tr.head, tr.world.device, amp_dtype=tr.amp_dtype,
                        scaler=tr.scaler, channels_last=tr.channels_last)
    optimizer_step(tr.optimizer, tr.scaler)
    return totals


@torch.no_grad()
def validate(tr: Trainer) -> tuple[float, float]:
    """Validation loss and accuracy over every validation image, summed over the processes.

    Runs the model itself, not the DDP wrapper: the shards may differ in length by one, and the
    wrapper's forward would wait for the others.
    """
    tr.raw.eval()
    device = tr.world.device
    totals = torch.zeros(3, dtype=torch.float64, device=device)
    for x, y in tqdm(tr.val_loader, desc="validate", unit="batch", leave=False,
                     disable=not tr.world.is_main):
        x = x.to(device, non_blocking=True)
        if tr.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        y = torch.as_tensor(y).to(device)
        with _autocast(device, tr.amp_dtype):
            logits = tr.raw(x)
        loss, prob = loss_and_prob(logits, y, tr.head)
        totals += torch.stack([loss.sum().double(), ((prob > 0.5).long() == y).sum().double(),
                               torch.tensor(float(len(y)), dtype=torch.float64, device=device)])
    loss_sum, correct, n = all_sum(totals).tolist()
    if n == 0:
        raise TrainError("the validation split is empty: the manifest has no 'val' rows")
    return loss_sum / n, correct / n


def early_stopping(best: float, wait: int, val_loss: float) -> tuple[float, int, bool]:
    """(best, epochs without improvement, improved) after an epoch with ``val_loss``."""
    if val_loss < best:
        return val_loss, 0, True
    return best, wait + 1, False


def stop_reason(tr: Trainer) -> str:
    """Why the run is over ("" while it is not)."""
    if tr.wait >= tr.profile.train_patience:
        return (f"early stopping after epoch {tr.epoch}: {tr.wait} epochs without a lower validation "
                f"loss than {tr.best_val_loss:.4f} (epoch {tr.best_epoch})")
    if tr.epoch >= tr.profile.train_epochs:
        return f"all {tr.profile.train_epochs} epochs done (best validation loss " \
               f"{tr.best_val_loss:.4f} at epoch {tr.best_epoch})"
    return ""


# ---------------------------------------------------------------- checkpoints

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


def atomic_save(obj, path: Path) -> None:
    """``torch.save`` so that a reader sees the old file or the whole new one (as paths.atomic_*)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        torch.save(obj, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise TrainError(f"{path} cannot be read with weights_only=True ({type(exc).__name__}: "
                         f"{str(exc)[:300]}); delete it to start this run afresh") from None


def save_last(tr: Trainer, path: Path) -> None:
    """Everything a restart needs: weights, optimizer, scaler, counters, history, RNG states."""
    atomic_save(dict(model=tr.raw.state_dict(), optimizer=tr.optimizer.state_dict(),
                     scaler=tr.scaler.state_dict() if tr.scaler is not None else {},
                     epoch=tr.epoch, sampler_epoch=tr.epoch, best_val_loss=tr.best_val_loss,
                     best_epoch=tr.best_epoch, epochs_without_improvement=tr.wait,
                     history=tr.history, rng=rng_state(), world_size=tr.world.size,
                     settings=tr.settings), path)


def save_best(tr: Trainer, path: Path) -> None:
    atomic_save(dict(model=tr.raw.state_dict(), epoch=tr.epoch, val_loss=tr.best_val_loss,
                     head=tr.head, train_model=tr.profile.train_model, settings=tr.settings), path)


def restore(tr: Trainer, ckpt: dict) -> None:
    """Continue from ``last.pt``: weights, optimizer, scaler, counters, RNG states."""
    tr.raw.load_state_dict(ckpt["model"])
    tr.optimizer.load_state_dict(ckpt["optimizer"])
    if tr.scaler is not None and ckpt["scaler"]:
        tr.scaler.load_state_dict(ckpt["scaler"])
    tr.epoch, tr.best_val_loss = int(ckpt["epoch"]), float(ckpt["best_val_loss"])
    tr.best_epoch, tr.wait = int(ckpt["best_epoch"]), int(ckpt["epochs_without_improvement"])
    tr.history = list(ckpt["history"])
    set_rng_state(ckpt["rng"])


def log_tensorboard(folder: Path, row: dict) -> None:
    """The epoch's numbers as TensorBoard scalars too, when TensorBoard is installed
    (``tensorboard --logdir results/<profile>/train``); metrics.csv stays the record."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return
    with SummaryWriter(log_dir=str(folder / "tensorboard")) as writer:
        for key, value in row.items():
            if key != "epoch" and isinstance(value, (int, float)):
                writer.add_scalar(key, value, row["epoch"])


def write_metrics(history: list[dict], path: Path) -> pd.DataFrame:
    """The whole table, rewritten atomically (one row per finished epoch)."""
    frame = pd.DataFrame(history, columns=METRICS)
    atomic_write_text(path, frame.to_csv(index=False))
    return frame


# ---------------------------------------------------------------- settings and set-up

def _digest(rows: pd.DataFrame) -> str:
    text = "\n".join(f"{p},{int(lab)}" for p, lab in sorted(zip(rows.path, rows.label)))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def run_settings(profile, control: bool, train_rows: pd.DataFrame, val_rows: pd.DataFrame) -> dict:
    """What a run computes: resuming with other values would mix two experiments."""
    out = {k: v for k, v in profile.as_dict().items() if k.startswith("train_") and k not in RUNTIME_ONLY}
    return out | dict(seed=profile.seed, control=bool(control), train_images=len(train_rows),
                      train_rows=_digest(train_rows), val_images=len(val_rows), val_rows=_digest(val_rows))


def check_settings(old: dict, new: dict, where: Path) -> None:
    diff = {k: (old.get(k), new.get(k)) for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)}
    if diff:
        changes = ", ".join(f"{k}: {a!r} there, {b!r} now" for k, (a, b) in diff.items())
        raise TrainError(f"the run in {where} was started with other settings ({changes}). Delete "
                         f"{where} to train afresh with the new ones, or run with the settings in its "
                         f"config.json; BOOK_RESULTS_ROOT can point elsewhere to keep both")


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
    from .dataset import ManifestDataset

    seed_everything(profile.seed)
    model, raw = prepare_model(profile, world, resuming)
    optimizer = torch.optim.Adam(model.parameters(), lr=profile.train_lr,
                                 weight_decay=profile.train_weight_decay)
    amp_dtype = autocast_dtype(profile, world.device)
    scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None
    transform = model_input(raw, profile.train_img_size)
    train_set = ManifestDataset(train_rows, transform=transform)
    val_set = ManifestDataset(val_rows, transform=transform)
    sampler = train_sampler(train_set, profile, world)
    return Trainer(profile=profile, world=world, control=control, model=model, raw=raw,
                   optimizer=optimizer, scaler=scaler, amp_dtype=amp_dtype,
                   accum=accumulation_steps(profile, world.size),
                   train_loader=make_loader(train_set, sampler, profile, world.device),
                   val_loader=make_loader(val_set, ShardSampler(len(val_set), world.rank, world.size),
                                          profile, world.device),
                   sampler=sampler, settings=settings)


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


# ---------------------------------------------------------------- the step

def run(profile, control: bool = False, deterministic: bool = False,
        model: str = backbones.DEFAULT) -> pd.DataFrame | None:
    """Train (or resume, or report a finished run); rank 0 returns the metrics table.

    ``model`` picks one of Table 3's backbones (:mod:`helpers.backbones`), each in its own run folder.
    """
    out = run_dir(profile, control, model)
    profile = backbones.for_model(profile, model)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # before cuBLAS starts
    world = distributed.init()
    plan = batch_plan(profile, world.size)
    if plan.note and world.is_main:
        print(f"note: {plan.note}", flush=True)
    profile = dataclasses.replace(profile, train_batch=plan.global_batch, train_micro_batch=plan.micro_batch)
    try:
        with determinism(world.device, deterministic) as det:
            return _run(profile, world, control, det, out)
    finally:
        distributed.finish()


@contextmanager
def damaged_images_stop_training(last: Path):
    """A damaged image, found before the first epoch or by the DataLoader (in a worker or not),
    stops training with the file and its repair named; the finished epochs stay in ``last``."""
    from .dataset import DamagedImage, damaged_message

    try:
        yield
    except DamagedImage as exc:
        kept = f"; the finished epochs are kept in {last} and the next run resumes from them" \
            if last.exists() else ""
        raise TrainError(f"{damaged_message(exc)}. Training stopped{kept}.") from None


def _run(profile, world, control: bool, deterministic: bool, out: Path) -> pd.DataFrame | None:
    from .dataset import check_files

    last, best, metrics = out / "last.pt", out / "best.pt", out / "metrics.csv"
    frame = mf.load(profile.name)
    train_rows, val_rows = training_rows(profile, frame, control), validation_rows(frame)
    if train_rows.empty:
        raise TrainError(f"no training images in the manifest of '{profile.name}': run the data, "
                         f"generate (and augment) steps first")
    with damaged_images_stop_training(last):
        check_files(inside(data_root(), p) for p in pd.concat([train_rows, val_rows])["path"])
    if world.is_main and not frame.source.isin(mf.AUGMENTED_SOURCES).any():
        print(f"note: no augmented images in the manifest of '{profile.name}' (Chapter 2's "
              f"`python -m helpers augment`): training on the training split as it is")
    settings = run_settings(profile, control, train_rows, val_rows)
    ckpt = load_checkpoint(last) if last.exists() else None
    if ckpt is not None:
        check_settings(ckpt["settings"], settings, out)
    tr = setup(profile, world, control, train_rows, val_rows, settings, resuming=ckpt is not None)
    if ckpt is not None:
        restore(tr, ckpt)
        if int(ckpt.get("world_size", world.size)) != world.size and world.is_main:
            print(f"note: {out} was trained on {ckpt['world_size']} processes and goes on with "
                  f"{world.size}: the same global batch, another order of images")
        del ckpt
    finished = stop_reason(tr)
    if finished:
        if world.is_main:
            print(f"run {out} is finished: {finished}; nothing to do (delete it to train again)")
            return write_metrics(tr.history, metrics)
        return None
    if world.is_main:
        write_config(profile, world, control, deterministic, settings, out, tr.epoch)
        print(f"train {out.name} on profile '{profile.name}': {profile.train_model} "
              f"({profile.train_head} head, {sum(p.numel() for p in tr.raw.parameters()) / 1e6:.1f} M "
              f"parameters), {len(train_rows)} training and {len(val_rows)} validation images, "
              f"{world.size} process(es) on {world.device}, global batch {profile.train_batch} = "
              f"{profile.train_micro_batch} x {world.size} x {tr.accum} micro-steps"
              + (f"; resuming after epoch {tr.epoch}" if tr.epoch else ""), flush=True)
    while not stop_reason(tr):
        epoch = tr.epoch + 1
        started = time.perf_counter()
        if world.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(world.device)
        with damaged_images_stop_training(last):
            stats = train_epoch(tr, epoch)
            val_loss, val_acc = validate(tr)
        tr.epoch = epoch
        tr.best_val_loss, tr.wait, improved = early_stopping(tr.best_val_loss, tr.wait, val_loss)
        if improved:
            tr.best_epoch = epoch
        seconds = time.perf_counter() - started
        tr.history.append(dict(epoch=epoch, train_loss=stats["train_loss"], train_acc=stats["train_acc"],
                               val_loss=val_loss, val_acc=val_acc, lr=tr.optimizer.param_groups[0]["lr"],
                               seconds=round(seconds, 3),
                               images_per_s=round(stats["train_images"] / stats["train_seconds"], 3),
                               peak_memory_mb=round(peak_memory_mb(world.device), 1)))
        if world.is_main:
            # best first, then last (with the history), then the table: a stop between two
            # writes resumes from the previous last.pt and redoes this epoch identically
            if improved:
                save_best(tr, best)
            save_last(tr, last)
            write_metrics(tr.history, metrics)
            row = tr.history[-1]
            log_tensorboard(metrics.parent, row)
            print(f"epoch {epoch}/{profile.train_epochs}: train loss {row['train_loss']:.4f} "
                  f"acc {row['train_acc']:.3f} | val loss {val_loss:.4f} acc {val_acc:.3f}"
                  f"{' (best)' if improved else ''} | {row['images_per_s']:.1f} images/s, "
                  f"{seconds:.1f} s", flush=True)
    distributed.barrier()
    if world.is_main:
        print(f"done: {stop_reason(tr)}; {metrics}, best weights {best}")
        return pd.read_csv(metrics)
    return None


# ---------------------------------------------------------------- command line

def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    add_profile_arguments(p, "train_micro_batch=2")
    p.add_argument("--model", choices=backbones.KEYS, default=backbones.DEFAULT,
                   help="the backbone (Chapter 5's Table 3): convnext is the profile's train_model, "
                        "the others come from its ablation_models; each has its own run folder")
    p.add_argument("--control", action="store_true",
                   help="train on the both-classes augmented set (the shortcut's control), run 'control'")
    p.add_argument("--deterministic", action="store_true",
                   help="deterministic algorithms on a GPU too (always on a CPU); slower")
    return p


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``train`` with ``python -m helpers``'s sub-commands."""
    p = subparsers.add_parser("train", help="fine-tune the classifier (Chapter 4; torchrun for N GPUs)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    return add_arguments(p)


def _cli(argv: list[str] | None = None) -> int:
    """``python -m helpers.train ...`` is ``python -m helpers train ...`` (one error handling)."""
    from .__main__ import main as helpers_main

    return helpers_main(["train", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(_cli())
