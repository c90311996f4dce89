"""Chapter 4: saving in the middle of an epoch, every few minutes and when the job is told to stop.

The paper's epoch takes 60 minutes on its two GPUs. A GPU box's scheduler, a cloud's spot
instance or a Colab session ends a job with SIGTERM and a short grace, so a checkpoint taken only
at the end of each epoch could lose most of an hour. Training therefore also saves ``last.pt``
every ``train_checkpoint_minutes`` and at once on SIGTERM, at the end of an optimizer step, with
how far into the epoch it got and the epoch's sums so far. The epoch's order of images is fixed by
the seed and the epoch, so a restart skips exactly the batches already trained
(:class:`helpers.classify.loaders.ResumableSampler`) and the run ends as one never stopped would.

Every process must decide together: the epoch's sums are summed over the processes before rank 0
saves them, and all stop after a SIGTERM. So the processes compare their clocks and signals with
one small all-reduce every :data:`CHECK_EVERY` optimizer steps (in a world of one, every step, at
no cost: the clock is read on the host and nothing waits for the GPU).
"""

from __future__ import annotations

import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.distributed as dist

from .checkpointing import save_last
from .loop import all_sum
from .trainer import Trainer, TrainError

CHECK_EVERY = 10  # optimizer steps between the processes' comparisons (several processes)


class Preempted(TrainError):
    """SIGTERM: the run saved where it was and stopped; the same command resumes it."""


class SaveClock:
    """When to save in mid-epoch: every ``minutes`` (0: never), and after a SIGTERM."""

    def __init__(self, minutes: float, world):
        self.every, self.world = float(minutes) * 60, world
        self.check_every = 1 if world.size == 1 else CHECK_EVERY
        self.last, self.stop = time.monotonic(), False

    @contextmanager
    def listening(self):
        """SIGTERM sets :attr:`stop` while training runs (the main thread only: where Python
        delivers signals), and the previous handler comes back after."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = signal.signal(signal.SIGTERM, self._on_sigterm)
        try:
            yield self
        finally:
            signal.signal(signal.SIGTERM, previous)

    def _on_sigterm(self, signum, frame) -> None:
        self.stop = True

    def due(self, step: int) -> bool:
        """Save after optimizer step ``step``? The same answer on every process."""
        if step % self.check_every:
            return False
        flags = [float(self.stop), float(self.every > 0 and time.monotonic() - self.last >= self.every)]
        if self.world.size > 1 and dist.is_initialized():
            t = torch.tensor(flags, device=self.world.device)
            dist.all_reduce(t, op=dist.ReduceOp.MAX)
            flags = t.tolist()
        self.stop = bool(flags[0])
        return bool(flags[0] or flags[1])


def mid_epoch_saver(tr: Trainer, last: Path, clock: SaveClock):
    """What :func:`helpers.classify.loop.train_epoch` calls after each optimizer step: save
    ``last.pt`` when the clock says so, and stop the run after a SIGTERM."""

    def after_step(step: int, totals: torch.Tensor, seconds: float) -> None:
        if not clock.due(step):
            return
        tr.step_in_epoch, tr.partial = step, all_sum(totals.clone()).cpu()
        tr.partial_seconds = seconds
        if tr.world.is_main:
            save_last(tr, last)
            print(f"saved {last.name} in epoch {tr.epoch + 1}, after step {step}", flush=True)
        clock.last = time.monotonic()
        if clock.stop:
            raise Preempted(f"stopped by SIGTERM in epoch {tr.epoch + 1} after step {step}; {last} "
                            f"holds where it was: run the same command again to resume there")

    return after_step
