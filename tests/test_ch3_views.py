"""Chapter 3: the views that need no run: the paper's NIQE rows against its claim, and the weights' origins.

The means are checked against plain ``sum / len`` of the rows as printed in the paper's Table 2 (typed
here again from the paper, section 5.2), so that a wrong transcription in ``helpers.core.paper`` or a
wrong mean in the view fails.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.book import ch3_inpaint as views
from helpers.core import paper
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

