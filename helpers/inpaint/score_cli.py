"""Chapter 3: ``python -m helpers score METRIC FILE... [--reference FILE...]``, the chapter's scores on any images.

Chapter 3 scores inpainted images with NIQE, PSNR, SSIM, LPIPS and SIFID. This command computes
the same scores for a reader's own image files, one line per file, so that a fill of one's own can
be held against the chapter's tables. Each score comes from the implementation the chapter uses,
or from the reference package behind it:

- ``niqe`` (no reference; lower is more natural): :func:`helpers.inpaint.niqe.niqe`, pyiqa's NIQE
  with the LIVE pristine parameters carried in the repository, so it works offline;
- ``psnr`` and ``ssim`` (higher is closer to the reference): scikit-image's
  ``peak_signal_noise_ratio`` and ``structural_similarity`` on the 8-bit RGB pixels (data range
  255, the channels as one axis); identical images give a PSNR of ``inf``;
- ``lpips`` (lower is closer): :func:`helpers.inpaint.lpips.lpips_pairs`, pyiqa's
  ``create_metric("lpips")`` (AlexNet, version 0.1), whose two weight files are fetched on first
  use; offline the command names the missing files and where to put them;
- ``sifid`` (lower is closer): :func:`helpers.inpaint.fid.sifid_pairs`, with pytorch-fid's published
  Inception weights from the torch-hub cache (fetched on first use, like LPIPS's).

The reference metrics compare ``FILE`` i with ``--reference`` file i (the original before the fill),
so both lists have the same length; PSNR, SSIM and LPIPS compare pixel by pixel and need the same
size. The command scores whole files: to score a hole alone, crop both images to it first (the
inpaint step's ``lpips_hole`` instead averages LPIPS's per-pixel map over the hole, see
:mod:`helpers.inpaint.lpips`).

Images are read with :func:`helpers.data.images.load_rgb`. A file that cannot be read or scored is
reported with its reason and the others are still scored. Exit codes: 0 when every file was
scored, 1 when some could not be (or the weights are missing), 2 for wrong arguments.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import warnings

import numpy as np
from PIL import Image

from ..data.images import BadImage, load_rgb
from .quality import QualityError, missing_weights

# metric -> (needs a reference, the same size as it, which way is better)
METRICS = {
    "niqe": (False, False, "lower is more natural"),
    "psnr": (True, True, "higher is closer to the reference"),
    "ssim": (True, True, "higher is closer to the reference"),
    "lpips": (True, True, "lower is closer to the reference"),
    "sifid": (True, False, "lower is closer to the reference"),
}
NIQE_PATCHES = 2  # NIQE fits a Gaussian to whole 96x96 patches: it needs at least two


class ScoreError(ValueError):
    """The command cannot score what it was given; the message says what to do."""


class ScoreArgumentError(ScoreError):
    """The arguments do not fit the metric (a missing or unequal reference list): exit code 2."""


def add_parser(subparsers) -> None:
    """Register the ``score`` command on ``python -m helpers``'s subparsers."""
    lines = ", ".join(f"{m} ({why})" for m, (_, _, why) in METRICS.items())
    p = subparsers.add_parser("score", help="score your own images: NIQE, PSNR, SSIM, LPIPS or SIFID, "
                              "one line per file (Chapter 3)", description=f"Scores: {lines}.")
    p.add_argument("metric", choices=list(METRICS), metavar="METRIC", help=" | ".join(METRICS))
    p.add_argument("files", nargs="+", metavar="FILE", help="the images to score (e.g. inpainted results)")
    p.add_argument("--reference", nargs="+", default=None, metavar="FILE",
                   help="psnr, ssim, lpips, sifid: the originals, one per FILE and in the same order")
    p.add_argument("--device", default=None, help="lpips, niqe, sifid: cpu or cuda (default: cuda if there is one)")


def check_arguments(metric: str, files: list, references: list | None) -> None:
    """Refuse a metric without its reference, a reference where none is used, or unequal lists."""
    if metric not in METRICS:
        raise ScoreArgumentError(f"unknown metric {metric!r}: choose one of {', '.join(METRICS)}")
    needs_reference = METRICS[metric][0]
    if needs_reference and not references:
        raise ScoreArgumentError(f"{metric} compares each FILE with its original: give them with "
                         f"--reference FILE... (one per FILE, in the same order)")
    if not needs_reference and references:
        raise ScoreArgumentError(f"{metric} takes no reference: leave out --reference")
    if references and len(references) != len(files):
        raise ScoreArgumentError(f"{len(files)} FILE(s) but {len(references)} --reference file(s): give one "
                         f"reference per file, in the same order")


def _read(path) -> tuple[Image.Image | None, str | None]:
    """The image at ``path``, or None and why it cannot be read."""
    try:
        return load_rgb(path), None
    except BadImage as exc:
        return None, str(exc)


def _niqe_problem(image: Image.Image) -> str | None:
    from .niqe import NIQE_BLOCK

    w, h = image.size
    if (w // NIQE_BLOCK) * (h // NIQE_BLOCK) < NIQE_PATCHES:
        return (f"{w}x{h} is too small for NIQE: it needs at least {NIQE_PATCHES} whole "
                f"{NIQE_BLOCK}x{NIQE_BLOCK} patches (e.g. 192x96)")
    return None


def load_inputs(metric: str, files: list, references: list | None) -> tuple[dict, list]:
    """{position: (image, reference or None)} of the inputs that can be scored, and (file, reason)
    of those that cannot: unreadable, a reference unreadable or of another size, too small."""
    same_size = METRICS[metric][1]
    ready, problems = {}, []
    for i, path in enumerate(files):
        image, why = _read(path)
        reference, ref_why = (None, None) if not references else _read(references[i])
        if why or ref_why:
            problems.append((path, why) if why else (path, f"its reference {references[i]}: {ref_why}"))
        elif same_size and image.size != reference.size:
            problems.append((path, f"is {image.size[0]}x{image.size[1]} but its reference {references[i]} is "
                                   f"{reference.size[0]}x{reference.size[1]}: {metric} compares pixel by "
                                   f"pixel, so crop or resize one to the other's size"))
        elif metric == "niqe" and _niqe_problem(image):
            problems.append((path, _niqe_problem(image)))
        else:
            ready[i] = (image, reference)
    return ready, problems


def _pixel_scores(metric: str, pairs: list) -> np.ndarray:
    """PSNR or SSIM of each (image, reference) with scikit-image, on 8-bit RGB."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    out = []
    for image, reference in pairs:
        a, ref = np.asarray(image), np.asarray(reference)
        if metric == "psnr":
            with warnings.catch_warnings():  # identical images: inf, with a divide-by-zero warning
                warnings.simplefilter("ignore", RuntimeWarning)
                out.append(peak_signal_noise_ratio(ref, a, data_range=255))
        else:
            out.append(structural_similarity(ref, a, data_range=255, channel_axis=2))
    return np.asarray(out, dtype=np.float64)


def _lpips(pairs: list, device) -> np.ndarray:
    """LPIPS of each (image, reference) through :func:`helpers.inpaint.lpips.lpips_pairs`, the
    implementation the inpaint step's ``lpips_hole`` uses too."""
    from .lpips import lpips_pairs

    return lpips_pairs(pairs, device)


def _sifid(pairs: list, device) -> np.ndarray:
    """SIFID of each (reference, image) through :func:`helpers.inpaint.fid.sifid_pairs`."""
    from . import fid
    from .inception import inception_weight_files

    try:
        with contextlib.redirect_stdout(sys.stderr):  # torch-hub's messages: not the table
            model = fid.sifid_model(device)
    except (OSError, RuntimeError) as exc:
        raise missing_weights("SIFID", inception_weight_files(), exc) from None
    return fid.sifid_pairs([(reference, image) for image, reference in pairs], model=model)


def compute(metric: str, pairs: list, device=None) -> np.ndarray:
    """``metric`` of each (image, reference) pair (reference None for NIQE), float64, in order."""
    if metric in ("psnr", "ssim"):
        return _pixel_scores(metric, pairs)
    if metric == "lpips":
        return _lpips(pairs, device)
    if metric == "sifid":
        return _sifid(pairs, device)
    from .niqe import niqe

    return niqe([image for image, _ in pairs], device=device)


def score_files(metric: str, files: list, references: list | None = None,
                device=None) -> tuple[list[tuple[str, float]], list[tuple[str, str]]]:
    """(file, score) of every file that could be scored, in the order given, and (file, reason)
    of the others. Raises :class:`ScoreError` for wrong arguments or missing weights."""
    files = [str(f) for f in files]
    references = [str(r) for r in references] if references else None
    check_arguments(metric, files, references)
    ready, problems = load_inputs(metric, files, references)
    if not ready:
        return [], problems
    try:
        values = compute(metric, list(ready.values()), device)
    except QualityError as exc:
        raise ScoreError(f"{metric}: {exc}") from None
    return [(files[i], float(v)) for i, v in zip(ready, values)], problems


def main(args: argparse.Namespace) -> int:
    """Run the parsed ``score`` command: a header line, then ``file<TAB>score`` per file on stdout,
    and each file that could not be scored, with its reason, on stderr."""
    try:
        scores, problems = score_files(args.metric, args.files, args.reference, args.device)
    except ScoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ScoreArgumentError) else 1
    print(f"file\t{args.metric}")
    for path, value in scores:
        print(f"{path}\t{value:.8g}")
    for path, why in problems:
        print(f"error: {path}: {why}", file=sys.stderr)
    if problems:
        print(f"{len(problems)} of {len(args.files)} file(s) not scored (see above)", file=sys.stderr)
    return 1 if problems else 0
