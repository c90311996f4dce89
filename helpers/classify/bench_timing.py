"""Every chapter: the clock of the benchmarks (``python -m helpers bench``): device names, synchronised timing, MFU.

A GPU runs asynchronously: a clock read without waiting for the device measures how fast work
was queued, not done. Every timing here waits for the device before it reads the clock, and
every benchmark warms up first (kernel selection, caches, compilation), so what it reports is
the steady state a long job runs at.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable

import torch

# Dense bf16 peak of common GPUs (TFLOP/s, vendor figures without sparsity), for MFU.
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0,
                    "L4": 121.0, "T4": 65.0, "V100": 125.0, "RTX 2080 Ti": 54.0, "RTX 4090": 165.0}


def device_name(device: torch.device) -> str:
    """The GPU's marketing name, or the CPU's model with its core count."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    except OSError:
        pass
    return f"CPU {model} ({os.cpu_count()} cores)"


def synchronize(device: torch.device) -> None:
    """Wait until the device has finished what was queued (a no-op on a CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device, repeats: int = 1, warmup: int = 1) -> float:
    """Seconds per call of ``fn`` in the steady state: ``warmup`` calls first, then ``repeats``
    calls timed between two device synchronisations."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    synchronize(device)
    return (time.perf_counter() - start) / repeats


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is the device running out of memory (a batch too large), not a bug."""
    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()


def free_memory(device: torch.device) -> None:
    """Give cached blocks back after an out-of-memory try, so the next try starts clean."""
    import gc

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def peak_tflops(name: str) -> float | None:
    for key, value in PEAK_BF16_TFLOPS.items():
        if key in name:
            return value
    return None


def mfu(flops_per_image: float, images_per_s: float, name: str) -> float | None:
    """Model FLOP utilisation: useful FLOP/s over the GPU's dense bf16 peak (None: peak unknown, or a CPU)."""
    peak = peak_tflops(name)
    return round(flops_per_image * images_per_s / (peak * 1e12), 4) if peak else None


def report(what: str, n: int, seconds: float, device: str) -> dict:
    """The figures of one timed run, printed as one line."""
    result = dict(what=what, images=n, seconds=round(seconds, 3), images_per_s=round(n / seconds, 3),
                  s_per_image=round(seconds / n, 4), device=device, threads=torch.get_num_threads())
    print(f"bench {what}: {n} images in {seconds:.2f} s = {n / seconds:.2f} images/s "
          f"({seconds / n:.3f} s/image) on {device}", flush=True)
    return result
