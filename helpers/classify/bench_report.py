"""Running the book: the table of ``make gpu-bench``'s figures for the page Running the book, from ``results/bench/*.json``.

Every figure is shown with the device that measured it and the date, beside the target of
issue 14 where there is one. Until a GPU run has been kept, the table says that the GPU figures
are still to be taken: a CPU run of tiny stand-ins checks that the benchmark works, it measures
nothing about the study's models. It reads files only: rendering the page runs no benchmark.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..core.files import slug
from ..core.paths import REPO_ROOT, results_root

FIELDS = ("device", "device_type", "date", "small", "torch", "figures")
STILL_TO_TAKE = ("GPU figures are still to be taken: run `make gpu-bench` on a GPU machine and keep its "
                 "`results/bench/<gpu>.json`. The rows below come from CPU runs of tiny stand-ins: "
                 "they show that the benchmark runs, not how fast the study's models are.")


class BenchReportError(ValueError):
    """A benchmark file that cannot be read; the message names it and says what to do."""


KEPT = REPO_ROOT / "book" / "measured" / "bench"  # the runs committed with the book, shown in every build


def bench_files(folder: Path | None = None) -> list[Path]:
    """The files of ``folder``; by default this machine's runs (``results/bench``) and the runs kept
    with the book (``book/measured/bench``: copy a GPU run's file there to publish it)."""
    folders = [Path(folder)] if folder else [results_root("bench"), KEPT]
    return sorted(p for f in folders if f.is_dir() for p in f.glob("*.json") if not p.name.endswith(".partial.json"))


def load_bench_file(path: Path) -> dict:
    """One ``make gpu-bench`` file, checked for the fields the table needs."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BenchReportError(f"results/bench/{Path(path).name} cannot be read ({exc}): delete it and "
                               f"run `make gpu-bench` again") from None
    missing = [f for f in FIELDS if not isinstance(data, dict) or f not in data]
    if missing:
        raise BenchReportError(f"results/bench/{Path(path).name} lacks {', '.join(missing)}: it was not "
                               f"written by `make gpu-bench`; delete it and run that again")
    return data


def _value(value) -> str:
    if value is None:
        return "-"
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _met(row: dict) -> str:
    return {True: "yes", False: "no", None: "-"}[row.get("met")]


def bench_rows(folder: Path | None = None) -> list[dict]:
    """One row per figure of every file: the figure, its value and unit, the target, whether it
    is met, and the device and date that measured it."""
    rows = []
    for path in bench_files(folder):
        data = load_bench_file(path)
        device = data["device"] + (" (small stand-ins)" if data["small"] else "")
        rows += [dict(figure=f["what"], value=_value(f["value"]), unit=f["unit"], target=f["target"] or "-",
                      met=_met(f), device=device, date=data["date"], gpu=data["device_type"] == "cuda")
                 for f in data["figures"]]
    return rows


def bench_table(folder: Path | None = None) -> str:
    """The Markdown of the page's section: a line on what is still missing, and the table."""
    rows = bench_rows(folder)
    if not rows:
        return ("GPU figures are still to be taken: no benchmark has been kept yet. `make gpu-bench` "
                "writes `results/bench/<device>.json`; copy it to `book/measured/bench/` to show it here.")
    lines = [] if any(r["gpu"] and "small" not in r["device"] for r in rows) else [STILL_TO_TAKE, ""]
    lines += ["| figure | value | unit | target (issue 14: one H100, ConvNeXt-XL at 384, SD 2.0 at 768 and 25 steps) | met | device | date |",
              "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['figure']} | {r['value']} | {r['unit']} | {r['target']} | {r['met']} | {r['device']} | "
              f"{r['date']} |" for r in rows]
    return "\n".join(lines)


PREDICT_KEPT = REPO_ROOT / "book" / "measured" / "bench-predict"  # bench predict runs after a change


def gpu_run(folder: Path | None = None) -> dict | None:
    """The newest full-size GPU run among the files (None until one is kept)."""
    runs = [load_bench_file(p) for p in bench_files(folder)]
    runs = [r for r in runs if r["device_type"] == "cuda" and not r["small"]]
    return max(runs, key=lambda r: r["date"]) if runs else None


def batch_tradeoff(folder: Path | None = None, epoch_images: int = 20_000) -> str:
    """Chapter 4's trade-off in the GPU run's numbers: the paper's micro-batch of 4 against the
    micro-batch that fills the GPU, as images/s and minutes per epoch of ``epoch_images``."""
    run = gpu_run(folder)
    if run is None:
        return ("No GPU run is kept with the book yet (`make gpu-bench`, page Running the book): the speeds "
                "of the two settings are still to be measured.")
    train = run["train"]
    paper, best = train["paper_batch_images_per_s"], train["best"]
    eager = next((r for r in train["sweep"] if r["micro_batch"] == best["micro_batch"] and "images_per_s" in r), best)
    minutes = lambda rate: epoch_images / rate / 60  # noqa: E731
    # the eager figure at the same micro-batch, said only when the fastest option was compiled
    uncompiled = f"; {eager['images_per_s']:.0f} images/s without `torch.compile`" if best.get("compile") else ""
    return (f"On one {run['device']} ({run['date']}, random weights, `make gpu-bench`), ConvNeXt-XL at "
            f"{train['img_size']} px trains at **{paper:.0f} images/s** with the paper's micro-batch of 4 "
            f"({minutes(paper):.1f} min per {epoch_images:,}-image epoch) and at **{best['images_per_s']:.0f} "
            f"images/s** with {best['label']} ({minutes(best['images_per_s']):.1f} min{uncompiled}): "
            f"{best['images_per_s'] / paper:.1f} times faster. The paper reports about 60 minutes per epoch "
            f"on two RTX 2080 Ti (the paper's figure, not measured here).")


def gpu_reading(folder: Path | None = None, predict_folder: Path | None = None) -> str:
    """What the kept GPU run says, in sentences computed from its file: each option's gain, what
    holds training back (with the profiler's top kernels), the data path, and prediction."""
    run = gpu_run(folder)
    if run is None:
        return ""
    train, data, pred, gen = run["train"], run["data_path"], run["predict"], run["generate"]
    best = train["best"]
    elementwise = sum(k["share"] for k in train["top_kernels"] if "elementwise" in k["name"])
    lines = [f"- **Training** reaches {best['images_per_s']:.0f} images/s, {train['mfu']:.0%} of the bf16 peak "
             f"({best['label']}). " + "; ".join(
                 f"{v['label'].split(', ', 1)[1]}: {v['images_per_s']:.0f} images/s" for v in train["variants"]
                 if "images_per_s" in v) + ". The step never waits for the host "
             f"({train['host_sync']['runtime']}).",
             "- **What limits it**: " + "; ".join(run.get("limits", [])) + f". Elementwise kernels (copies, casts, "
             f"activations: memory-bound work) take {elementwise:.0%} of the device time among these top kernels.",
             f"- **Data path**: {data['images_per_s']:.0f} images/s from the loader's worker processes "
             f"(nvJPEG on the GPU: {data['gpu_decode_images_per_s']:.0f}), "
             + ("more than training consumes: the GPU does not wait for data." if data["images_per_s"] >=
                best["images_per_s"] else "less than training consumes: decoding on the GPU would feed it."),
             f"- **Generation**: {gen['s_per_image']:.3f} s/image at {gen['steps']} steps, "
             f"{gen['unet_share']:.0%} of it in the UNet.",
             f"- **Prediction** in this run: {pred['images_per_s']:.0f} images/s from JPEG files against "
             f"{pred['model_only_images_per_s']:.0f} for the model alone (bound by the {pred['bound']})."]
    after = (predict_folder or PREDICT_KEPT) / f"{slug(run['device'])}.json"
    if after.exists():
        rows = json.loads(after.read_text(encoding="utf-8"))
        row = next((r for r in rows if r["batch"] == pred["batch"]), rows[0])
        lines.append(f"  Decoding the next batch while the model runs on this one (a later change, measured with "
                     f"`bench predict` on another {row['device']}): {row['images_per_s']:.0f} images/s at batch "
                     f"{row['batch']}, still bound by the {row['bound']}.")
    return "\n".join(lines)
