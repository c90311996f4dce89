"""Chapters 1, 4 and 5: one process per GPU under ``torchrun``; plain ``python`` is a world of one."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    rank: int
    size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init(timeout_hours: float = 48.0) -> World:
    """Read torchrun's variables, join the process group (NCCL on GPUs, gloo on CPUs).

    The long timeout lets a rank wait at the final barrier for slower ranks (generation shards can
    differ by hours after a restart skipped finished images).
    """
    size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo",
                                timeout=timedelta(hours=timeout_hours))
    return World(rank=rank, size=size, local_rank=local_rank, device=device)


CPU_PROCESSES = 2  # without a GPU: two gloo processes, the paper's two-GPU layout on a CPU


def launch_processes() -> int:
    """How many processes a chapter launches with torchrun: one per visible GPU, else
    :data:`CPU_PROCESSES` CPU processes. The batch follows (``train.batch_plan``)."""
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return gpus or CPU_PROCESSES


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def finish() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def default_device(device: str | torch.device | None = None) -> torch.device:
    """The device a one-process step runs on: the one asked for, else the GPU when there is one."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
