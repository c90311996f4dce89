"""Chapter 5: an evaluation broken down by kind of image (photo, artwork, illustration...).

The paper found that the DALL-E 2 images its classifier called real were mostly photographs and
artwork. ``evaluate --categories CSV`` (columns ``file``, ``category``) gives the same breakdown:
per true class and category, the share called generated, the accuracy and the mean P(generated).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .classifier import EvaluateError
from .prediction import LABEL_NAMES


def load_categories(csv_path) -> pd.DataFrame:
    """A user's CSV of ``file`` (a file name or path) and ``category`` (photo, artwork, ...)."""
    path = Path(csv_path).expanduser()
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise EvaluateError(f"cannot read the categories file {path} ({type(exc).__name__}: {exc}); "
                            f"give a CSV with the columns file,category") from None
    missing = {"file", "category"} - set(table.columns)
    if missing:
        raise EvaluateError(f"the categories file {path} lacks the column(s) {', '.join(sorted(missing))}; "
                            f"it needs file (an image's name) and category, e.g. 'img_001.png,artwork'")
    names = table["file"].map(lambda f: Path(f).name)
    if names.duplicated().any():
        raise EvaluateError(f"the categories file {path} names {names[names.duplicated()].iloc[0]!r} "
                            f"twice; give each image one category")
    return pd.DataFrame({"file": names, "category": table["category"].str.strip()})


def category_table(result: dict, categories) -> pd.DataFrame:
    """Per true class and category: images, share called generated, accuracy, mean P(generated).

    ``categories``: a CSV path or a frame from :func:`load_categories`, matched to the evaluation's
    images by file name; images the file does not name are counted under "(no category)".
    """
    cats = categories if isinstance(categories, pd.DataFrame) else load_categories(categories)
    pred = result["predictions"].assign(file=lambda f: f["path"].map(lambda p: Path(p).name))
    merged = pred.merge(cats, on="file", how="left")
    if merged["category"].isna().all():
        raise EvaluateError(f"no image of {result['name']} is named in the categories file: its file "
                            f"column must hold the images' file names (e.g. {pred['file'].iloc[0]!r})")
    merged["category"] = merged["category"].fillna("(no category)").replace("", "(no category)")
    merged["true class"] = merged["label"].map(LABEL_NAMES)
    merged["right"] = merged["predicted"] == merged["label"]
    table = merged.groupby(["true class", "category"]).agg(
        images=("file", "size"), called_generated=("predicted", "mean"), accuracy=("right", "mean"),
        mean_p_generated=("p_generated", "mean"))
    return table.rename(columns={"called_generated": "share called generated",
                                 "mean_p_generated": "mean P(generated)"})

