"""Chapter 4: how the global batch is made on N processes: micro-batches, processes, accumulation.

The paper trains with a global batch of 4 on two GPUs. Here the global batch ``train_batch`` is
made of ``train_micro_batch`` images per process per micro-step, accumulated over
``train_batch / (train_micro_batch x processes)`` micro-steps, so that any number of processes
(and a CPU) runs the same optimizer steps.
"""

from __future__ import annotations

from dataclasses import dataclass

from .trainer import TrainError


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
