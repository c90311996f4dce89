"""Chapter 4: one epoch of training and one of validation, as the paper's recipe runs them.

The loss of an optimizer step is the mean over all its images, whatever the number of processes
and micro-steps: 2 processes x 4 images give the step of 1 process x 8 images. The gradients are
synchronised between processes once per optimizer step (DDP ``no_sync`` before). Early stopping
ends a run after ``train_patience`` epochs without a lower validation loss.
"""

from __future__ import annotations

import resource
import time
from contextlib import nullcontext

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm import tqdm

from .models import loss_and_prob
from .trainer import Trainer, TrainError


def autocast_dtype(profile, device: torch.device) -> torch.dtype | None:
    """Mixed precision on a GPU (bf16 or fp16); a CPU always runs float32."""
    if device.type != "cuda" or profile.train_precision == "fp32":
        return None
    return torch.bfloat16 if profile.train_precision == "bf16" else torch.float16


def _autocast(device: torch.device, dtype: torch.dtype | None):
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()


def _on_device(x, y, device: torch.device, channels_last: bool) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.to(device, non_blocking=True)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x, torch.as_tensor(y).to(device, non_blocking=True)


def _totals(loss: torch.Tensor, prob: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """float64 ``[loss sum, correct, images]`` of one batch."""
    return torch.stack([loss.detach().sum().double(), ((prob > 0.5).long() == y).sum().double(),
                        torch.full((), len(y), dtype=torch.float64, device=y.device)])  # no host-to-device copy


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
        x, y = _on_device(x, y, device, channels_last)
        with sync:
            with _autocast(device, amp_dtype):
                logits = model(x)
            loss, prob = loss_and_prob(logits, y, head)
            step_loss = loss.sum() / n_local
            (scaler.scale(step_loss) if scaler is not None else step_loss).backward()
        totals += _totals(loss, prob, y)
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


def train_step(tr: Trainer, micro_batches) -> torch.Tensor:
    """One optimizer step on this process's micro-batches; their ``[loss sum, correct, images]``."""
    totals = accumulate(tr.model, micro_batches, tr.head, tr.world.device, amp_dtype=tr.amp_dtype,
                        scaler=tr.scaler, channels_last=tr.channels_last)
    optimizer_step(tr.optimizer, tr.scaler)
    return totals


def _steps(loader, accum: int):
    """The loader's micro-batches, ``accum`` to an optimizer step; the epoch's last step may be
    smaller (the same size on every process)."""
    group = []
    for batch in loader:
        group.append(batch)
        if len(group) == accum:
            yield group
            group = []
    if group:
        yield group


def _start_of_epoch(tr: Trainer, epoch: int) -> torch.Tensor:
    """Set the epoch's order (skipping the steps a save in mid-epoch already trained) and return
    the sums to start from: those steps' sums on rank 0, zero elsewhere."""
    tr.sampler.set_epoch(epoch)
    tr.sampler.skip = tr.step_in_epoch * tr.accum * tr.train_loader.batch_size
    if tr.train_loader.generator is not None:  # the loader's own draws: never the global RNG's
        tr.train_loader.generator.manual_seed(tr.profile.seed * 1000 + epoch)
    totals = torch.zeros(3, dtype=torch.float64, device=tr.world.device)
    if tr.partial is not None and tr.world.is_main:
        totals += tr.partial.to(tr.world.device)
    return totals


def train_epoch(tr: Trainer, epoch: int, after_step=None) -> dict:
    """One pass over the training shards (or the rest of one, after a save in mid-epoch); returns
    the summed metrics of all processes. ``after_step(step, totals, seconds)`` runs after each
    optimizer step (:mod:`helpers.classify.preemption`: saves in mid-epoch)."""
    tr.model.train()
    totals, first = _start_of_epoch(tr, epoch), tr.step_in_epoch + 1
    started = time.perf_counter() - tr.partial_seconds
    with tqdm(total=len(tr.train_loader), desc=f"epoch {epoch} train", unit="batch", leave=False,
              disable=not tr.world.is_main) as bar:
        for step, micro_batches in enumerate(_steps(tr.train_loader, tr.accum), start=first):
            totals += train_step(tr, micro_batches)
            bar.update(len(micro_batches))
            if after_step is not None:
                after_step(step, totals, time.perf_counter() - started)
    if tr.world.device.type == "cuda":
        torch.cuda.synchronize(tr.world.device)
    seconds = time.perf_counter() - started
    tr.step_in_epoch, tr.partial, tr.partial_seconds, tr.sampler.skip = 0, None, 0.0, 0
    loss_sum, correct, n = all_sum(totals).tolist()
    return dict(train_loss=loss_sum / n, train_acc=correct / n, train_images=int(n), train_seconds=seconds)


@torch.no_grad()
def validate(tr: Trainer) -> tuple[float, float]:
    """Validation loss and accuracy over every validation image, summed over the processes.

    Runs the model itself, not the DDP wrapper: the shards may differ in length by one, and the
    wrapper's forward would wait for the others.
    """
    tr.raw.eval()
    device = tr.world.device
    totals = torch.zeros(3, dtype=torch.float64, device=device)
    for x, y in tqdm(tr.val_loader, desc="validate", unit="batch", leave=False, disable=not tr.world.is_main):
        x, y = _on_device(x, y, device, tr.channels_last)
        with _autocast(device, tr.amp_dtype):
            logits = tr.raw(x)
        totals += _totals(*loss_and_prob(logits, y, tr.head), y)
    loss_sum, correct, n = all_sum(totals).tolist()
    if n == 0:
        raise TrainError("the validation split is empty: the manifest has no 'val' rows")
    return loss_sum / n, correct / n


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory so far: PyTorch's allocations on a GPU, the process's resident size on a CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def epoch_clock(device: torch.device) -> float:
    """The start of an epoch: its time, and the GPU's peak memory counted afresh."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    return time.perf_counter()


def early_stopping(best: float, wait: int, val_loss: float) -> tuple[float, int, bool]:
    """(best, epochs without improvement, improved) after an epoch with ``val_loss``."""
    if val_loss < best:
        return val_loss, 0, True
    return best, wait + 1, False


def end_epoch(tr: Trainer, epoch: int, stats: dict, val_loss: float, val_acc: float, started: float) -> bool:
    """Count the finished epoch, update early stopping, add its row to the history; improved?"""
    tr.epoch = epoch
    tr.best_val_loss, tr.wait, improved = early_stopping(tr.best_val_loss, tr.wait, val_loss)
    if improved:
        tr.best_epoch = epoch
    tr.history.append(dict(epoch=epoch, train_loss=stats["train_loss"], train_acc=stats["train_acc"],
                           val_loss=val_loss, val_acc=val_acc, lr=tr.optimizer.param_groups[0]["lr"],
                           seconds=round(time.perf_counter() - started, 3),
                           images_per_s=round(stats["train_images"] / stats["train_seconds"], 3),
                           peak_memory_mb=round(peak_memory_mb(tr.world.device), 1)))
    return improved


def stop_reason(tr: Trainer) -> str:
    """Why the run is over ("" while it is not)."""
    if tr.wait >= tr.profile.train_patience:
        return (f"early stopping after epoch {tr.epoch}: {tr.wait} epochs without a lower validation "
                f"loss than {tr.best_val_loss:.4f} (epoch {tr.best_epoch})")
    if tr.epoch >= tr.profile.train_epochs:
        return f"all {tr.profile.train_epochs} epochs done (best validation loss " \
               f"{tr.best_val_loss:.4f} at epoch {tr.best_epoch})"
    return ""
