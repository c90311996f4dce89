"""Chapter 3: the views that need no run: the paper's NIQE rows against its claim, and the weights' origins;
and the paired tests of generated against real images, on a small synthetic ``scores.csv``.

The means are checked against plain ``sum / len`` of the rows as printed in the paper's Table 2 (typed
here again from the paper, section 5.2), so that a wrong transcription in ``helpers.core.paper`` or a
wrong mean in the view fails. The paired tests are checked on known cases: a constant difference in
every one of n pairs has the exact two-sided p-value 2 / 2**n of the sign-flip test, identical
scores have p = 1, and the correction is Holm's (the smallest p times the number of tests).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers.book import ch3_inpaint as views
from helpers.core import paper
from helpers.core.profiles import PROFILES
from helpers.core.stats import holm
from helpers.data import manifest as mf
from helpers.inpaint.weights import PUBLISHED

# The paper's Table 2, NIQE columns, Image1..Image10 (section 5.2), as printed.
PRINTED_NIQE_ROWS = {
    "MS-COCO": [4.5903, 3.0011, 3.7806, 4.4704, 3.8071, 3.1545, 3.523, 4.0398, 5.1887, 2.956],
    "DALL-E 2": [4.3293, 4.5903, 4.3194, 4.6827, 5.4865, 6.0514, 3.4186, 3.4495, 3.3526, 4.0303],
    "Imagen": [4.1303, 4.3048, 3.0726, 4.1156, 4.3323, 4.1148, 4.5378, 3.9339, 3.7073, 3.668],
    "Stable Diffusion": [2.9703, 3.6435, 3.746, 3.7288, 5.194, 3.2744, 2.8453, 5.1683, 3.7698, 3.4401],
}
TABLE2_IMAGES = 10  # Table 2 has rows Image1..Image10 ("We applied 10 images for each dataset")


def test_stored_rows_are_the_papers():
    assert paper.TABLE2_NIQE == PRINTED_NIQE_ROWS
    assert all(len(rows) == TABLE2_IMAGES for rows in paper.TABLE2_NIQE.values())


def test_means_are_the_arithmetic_means_of_the_rows():
    check = views.paper_niqe_check(decimals=None)
    assert list(check.index) == list(paper.TABLE2_SOURCES)
    for source, rows in PRINTED_NIQE_ROWS.items():
        assert check.loc[source, "rows in Table 2"] == len(rows) == TABLE2_IMAGES
        assert check.loc[source, "mean NIQE of its rows"] == pytest.approx(sum(rows) / len(rows), abs=1e-12)
        assert check.loc[source, "NIQE average, printed"] == paper.TABLE2_AVERAGE[source][1]


def test_known_means_and_the_disagreement():
    """Worked by hand: MS-COCO's rows sum to 38.5115, Stable Diffusion's to 37.7805."""
    check = views.paper_niqe_check()  # rounded to 5 decimals: exact for a mean of ten 4-decimal rows
    assert check.loc["MS-COCO", "mean NIQE of its rows"] == 3.85115
    assert check.loc["Stable Diffusion", "mean NIQE of its rows"] == 3.77805
    says = check["its rows say"]
    assert says["Stable Diffusion"] == "not higher than MS-COCO"
    assert says["DALL-E 2"] == says["Imagen"] == "higher than MS-COCO"
    assert set(check["section 5.2 claims"].drop("MS-COCO")) == {"higher than MS-COCO"}


def test_text_names_the_disagreeing_set_with_its_numbers():
    text = views.paper_niqe_text()
    assert views.PAPER_NIQE_CLAIM in text
    assert "Stable Diffusion's rows average 3.77805 (printed average 3.9781)" in text
    assert "against 3.85115 for MS-COCO (printed average 3.8512)" in text
    assert "DALL-E 2" not in text and "Imagen" not in text
    # MS-COCO's printed 3.8512 is its rows' 3.85115 rounded half up: not called a mismatch.
    assert text.endswith("for Stable Diffusion they are not the means of the rows above them.")


def test_text_when_the_rows_agree(monkeypatch):
    agreeing = {s: [v + (1.0 if s != "MS-COCO" else 0.0) for v in rows] for s, rows in PRINTED_NIQE_ROWS.items()}
    monkeypatch.setattr(paper, "TABLE2_NIQE", agreeing)
    assert views.paper_niqe_text().endswith("agree for every generated set.")
    assert set(views.paper_niqe_check()["its rows say"].drop("MS-COCO")) == {"higher than MS-COCO"}


def test_weights_table_names_the_fetched_files_and_credits_them():
    table = views.weights_table()
    assert list(table.index) == list(PUBLISHED)
    assert table.loc["deepfill_v2", "file"] == "states_tf_places2.pth"
    assert "states_pt" not in " ".join(table["file"])
    assert "third-party" in table.loc["pconv", "whose weights"]
    assert "not the weights of Liu et al." in table.loc["pconv", "whose weights"]
    assert "official" in table.loc["deepfill_v2", "whose weights"]


def test_cited_keys_are_in_the_bibliography():
    bib = (Path(__file__).resolve().parents[1] / "book" / "references.bib").read_text()
    keys = {k.strip() for refs in views.weights_table()["references"] for k in refs.split(",")}
    assert keys == {"naoto0804pconv", "yu2019deepfillcode", "nipponjo2022deepfill"}
    for key in keys:
        assert f"{{{key}," in bib, key



# -- the paired tests of generated against real images ---------------------------------------------

N_PAIRS = 10  # 2 ** 10 = 1024 sign flips: enumerated, so the p-values are exact
SHIFT = 0.5


def _scores(columns=("niqe_before", "niqe_after", "psnr_hole", "ssim_hole", "sifid", "sifid_hole")) -> pd.DataFrame:
    """scores.csv of one model: MS-COCO; Stable Diffusion = MS-COCO + SHIFT on every score (and
    NIQE before unchanged, so NIQE's change is SHIFT too); DALL-E 2 = MS-COCO exactly."""
    rng = np.random.default_rng(0)
    real = {c: rng.uniform(1, 5, N_PAIRS) for c in columns}
    rows = []
    for set_name, shift in (("MS-COCO", 0.0), ("Stable Diffusion", SHIFT), ("DALL-E 2", 0.0)):
        for i in range(N_PAIRS):
            values = {c: real[c][i] + (shift if c != "niqe_before" else 0.0) for c in columns}
            rows.append({"model": "pconv", "set": set_name, "index": i, "key": f"k{i}", **values})
    return pd.DataFrame(rows)


def _set_rows(table: pd.DataFrame, model: str, set_name: str) -> pd.DataFrame:
    """The rows of one model and set, by metric (in the table's order)."""
    flat = table.reset_index()
    return flat[(flat.model == model) & (flat.set == set_name)].set_index("metric")


def test_paired_tests_a_known_difference_and_identical_scores():
    table = views.paired_comparison({"pconv": _scores()}, n_resamples=10000)
    assert list(table.index.names) == ["model", "set", "metric"]
    assert list(table.columns) == views.PAIRED_COLUMNS[3:]
    metrics = ["NIQE after", "NIQE after - before", "PSNR in the hole", "SSIM in the hole", "SIFID",
               "SIFID of the hole's box"]
    shifted, same = _set_rows(table, "pconv", "Stable Diffusion"), _set_rows(table, "pconv", "DALL-E 2")
    assert list(shifted.index) == metrics
    assert (shifted["n"] == N_PAIRS).all() and (same["n"] == N_PAIRS).all()
    assert np.allclose(shifted["mean difference"], SHIFT)
    assert np.allclose(shifted["mean generated"] - shifted["mean real"], SHIFT)
    assert (shifted["p"] == 2 / 2 ** N_PAIRS).all()  # every pair differs the same way: the exact p
    assert (same["p"] == 1.0).all() and (same["mean difference"] == 0).all()
    raw = _scores()
    coco = raw[raw.set == "MS-COCO"]
    assert shifted.loc["NIQE after", "mean real"] == pytest.approx(coco.niqe_after.mean())
    assert shifted.loc["NIQE after - before", "mean real"] == pytest.approx((coco.niqe_after - coco.niqe_before).mean())


def test_holm_is_applied_across_the_whole_table():
    two_models = {"pconv": _scores(), "telea": _scores(("niqe_after", "sifid"))}
    table = views.paired_comparison(two_models)
    tests = 2 * 6 + 2 * 2  # two generated sets each; pconv's 6 scores, telea's 2
    assert len(table) == tests
    assert np.array_equal(table["p (Holm)"].to_numpy(), holm(table["p"].to_numpy()))
    smallest = table.loc[("telea", "Stable Diffusion", "SIFID")]
    assert smallest["p (Holm)"] == pytest.approx(tests * smallest["p"]) and smallest["p (Holm)"] > smallest["p"]
    assert (table["p (Holm)"] >= table["p"]).all()


def test_paired_tests_leave_out_what_is_missing_or_not_finite():
    scores = _scores(("niqe_after", "psnr_hole"))
    scores.loc[(scores.set == "Stable Diffusion") & (scores["index"] == 3), "psnr_hole"] = np.inf
    scores = scores[~((scores.set == "DALL-E 2") & (scores["index"] == 0))]  # DALL-E 2's image 0 missing
    table = views.paired_comparison({"pconv": scores})
    assert set(table.index.get_level_values("metric")) == {"NIQE after", "PSNR in the hole"}  # no niqe_before
    assert table.loc[("pconv", "Stable Diffusion", "PSNR in the hole"), "n"] == N_PAIRS - 1
    assert table.loc[("pconv", "Stable Diffusion", "NIQE after"), "n"] == N_PAIRS
    assert (_set_rows(table, "pconv", "DALL-E 2")["n"] == N_PAIRS - 1).all()
    one_pair = views.paired_comparison({"pconv": _scores(("sifid",)).query("index == 0")})
    assert one_pair["p"].isna().all() and one_pair["p (Holm)"].isna().all()  # too few pairs: no test


def test_an_older_scores_file_with_niqe_is_read_as_niqe_after(data_root):
    profile = PROFILES["smoke"]
    folder = views.out_dir(profile, "pconv")
    old = _scores(("niqe", "sifid"))
    mf.write_csv(old, folder / "scores.csv")
    mf.write_csv(pd.DataFrame([{"model": "pconv", "set": s, "images": N_PAIRS, "fid": 1.0,
                                "inception_weights": "pytorch-fid"} for s in old.set.unique()]), folder / "fid.csv")
    scores, _ = views.load_scores(profile, "pconv")
    assert "niqe" not in scores and np.array_equal(scores.niqe_after, old.niqe)
    table = views.paired_tests(profile, ["pconv"], n_resamples=1000)
    assert set(table.index.get_level_values("metric")) == {"NIQE after", "SIFID"}
    assert views.table2(profile, ["pconv"]).loc[("pconv", "MS-COCO"), "NIQE, all"] == pytest.approx(
        round(old[old.set == "MS-COCO"].niqe.mean(), 3))
