"""Chapter 3's views of the inpaint step's scores: the per-image table, the sentence that says which
holes ran (read from ``hole_kind``), and LPIPS inside the hole among the paired tests with Holm.
Each runs on a small ``scores.csv`` written here."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers.book import ch3_inpaint as views
from helpers.core.profiles import PROFILES
from helpers.core.stats import holm
from helpers.data import manifest as mf

N = 12
SETS = ("MS-COCO", "Stable Diffusion")
COLUMNS = ("niqe_before", "niqe_after", "psnr_hole", "ssim_hole", "lpips_hole", "sifid", "sifid_hole")


def _scores(kinds: list[str], lpips_shift: float = 0.1) -> pd.DataFrame:
    """One model's scores.csv: Stable Diffusion = MS-COCO with LPIPS in the hole higher by
    ``lpips_shift`` and every other score the same; real hole i has kind ``kinds[i]``, and its
    generated partner that kind moved when any hole is an object's (objects mode)."""
    rng = np.random.default_rng(1)
    real = {c: rng.uniform(0.1, 5, N) for c in COLUMNS}
    moved = "object" in kinds  # objects mode: every generated hole is the real one moved
    rows = []
    for set_name in SETS:
        for i in range(N):
            kind = kinds[i] + ("_matched" if moved and set_name != SETS[0] else "")
            values = {c: real[c][i] + (lpips_shift if c == "lpips_hole" and set_name != SETS[0] else 0.0)
                      for c in COLUMNS}
            rows.append({"model": "telea", "set": set_name, "index": i, "key": f"k{i}", "hole_ratio": 0.12,
                         "hole_kind": kind, **values})
    return pd.DataFrame(rows)


def _write(profile, model: str, scores: pd.DataFrame) -> None:
    folder = views.out_dir(profile, model)
    mf.write_csv(scores, folder / "scores.csv")
    mf.write_csv(pd.DataFrame([{"model": model, "set": s, "images": N, "fid": 1.0, "kid": 0.0,
                                "inception_weights": "random stand-in"} for s in SETS]), folder / "fid.csv")


def test_the_per_image_table_shows_the_fills_scores_for_the_first_ten(data_root):
    profile = PROFILES["smoke"]
    _write(profile, "telea", _scores(["free_form"] * N))
    table = views.per_image(profile, "telea")
    assert list(table.index.names) == ["set", "index"]
    assert len(table) == 2 * views.PAPER_N  # the paper's ten rows per source, of each set
    assert list(table.columns) == list(views.PER_IMAGE_COLUMNS.values())
    shifted = table.loc["Stable Diffusion", "LPIPS in hole"] - table.loc["MS-COCO", "LPIPS in hole"]
    assert np.allclose(shifted, 0.1, atol=2e-3)  # rounded to 3 decimals


def test_the_holes_sentence_says_what_ran(data_root):
    profile = PROFILES["course"]
    _write(profile, "telea", _scores(["free_form"] * N))
    text = views.holes_text(profile, ["telea"])
    assert text.startswith("**Free-form holes**") and "12% of each image" in text
    _write(profile, "telea", _scores(["object"] * 10 + ["free_form"] * 2))
    text = views.holes_text(profile, ["telea"])
    assert text.startswith("**Object removal**: the holes of 10 of the 12 photographs")
    assert "the other 2 had no such object and got free-form strokes" in text
    assert "dilated by 4 px" in text and "moved to a seeded random place" in text
    _write(profile, "pconv", _scores(["free_form"] * N))
    both = views.holes_text(profile, ["telea", "pconv"])  # two runs with different holes: each named
    assert both.startswith("telea: **Object removal**") and "pconv: **Free-form holes**" in both
    old = _scores(["free_form"] * N).drop(columns=["hole_kind"])
    _write(profile, "telea", old)
    assert "before the step recorded its holes' kind" in views.holes_text(profile, ["telea"])


def test_lpips_in_the_hole_is_among_the_paired_tests_and_the_holm_correction():
    table = views.paired_comparison({"telea": _scores(["object"] * N)}, n_resamples=5000)
    row = table.loc[("telea", "Stable Diffusion", "LPIPS in the hole")]
    assert row["n"] == N and row["mean difference"] == pytest.approx(0.1)
    assert row["p"] == 2 / 2 ** N  # every pair differs the same way: the exact sign-flip p
    others = table.drop(index=("telea", "Stable Diffusion", "LPIPS in the hole"))
    assert (others["p"] == 1.0).all()
    assert np.array_equal(table["p (Holm)"].to_numpy(), holm(table["p"].to_numpy()))
    assert row["p (Holm)"] == pytest.approx(len(table) * row["p"])
