import pandas as pd
import pytest

from helpers.data import manifest as mf
from helpers.classify.dataset import ManifestDataset
from helpers.core.paths import UnsafePathError, inside


def _frame(root, paths, labels=None):
    rows = []
    for i, p in enumerate(paths):
        full = root / p
        full.parent.mkdir(parents=True, exist_ok=True)
        from PIL import Image
        Image.new("RGB", (40, 40), (i * 20, 0, 0)).save(full)
        label = (labels or [0] * len(paths))[i]
        rows.append(dict(path=p, label=label, label_name=["real", "generated"][label], split="train",
                         source="x"))
    return pd.DataFrame(rows)


@pytest.mark.parametrize("bad", ["/etc/passwd", "../outside.jpg", "smoke/../../x.jpg", "\\\\server\\x"])
def test_paths_never_leave_the_root(tmp_path, bad):
    with pytest.raises(UnsafePathError):
        inside(tmp_path, bad)


def test_inside_accepts_nested_paths(tmp_path):
    assert inside(tmp_path, "a/b.jpg") == (tmp_path / "a" / "b.jpg").resolve()


def test_validate_refuses_what_the_study_cannot_use(tmp_path):
    frame = _frame(tmp_path, ["a.png", "b.png"])
    mf.validate(frame, root=tmp_path)
    for column, value, message in [("label", 3, "label must be 0"), ("split", "dev", "split must be"),
                                   ("path", "../x.png", "leaves the data root"),
                                   ("label_name", "generated", "disagree")]:
        bad = frame.copy()
        bad.loc[0, column] = value
        with pytest.raises(mf.ManifestError, match=message):
            mf.validate(bad, root=tmp_path)
    dup = pd.concat([frame, frame.iloc[:1]])
    with pytest.raises(mf.ManifestError, match="listed twice"):
        mf.validate(dup, root=tmp_path)
    (tmp_path / "a.png").unlink()
    with pytest.raises(mf.ManifestError, match="a.png does not exist"):
        mf.validate(frame, root=tmp_path)


def test_parts_make_one_manifest_and_the_dataset_reads_it(data_root):
    real = _frame(data_root, ["smoke/r/1.png", "smoke/r/2.png"])
    gen = _frame(data_root, ["smoke/g/1.png"], labels=[1])
    mf.write_part("smoke", "real", real)
    path = mf.write_part("smoke", "generated", gen)
    frame = mf.load("smoke")
    assert path.exists() and len(frame) == 3
    assert mf.counts(frame).loc["generated", "total"] == 1
    ds = ManifestDataset("smoke", split="train")
    x, y = ds[2]
    assert x.shape == (3, 40, 40) and 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    assert sorted(ds.labels) == [0, 0, 1]
    mf.write_part("smoke", "real", real.iloc[:1])  # a part rewritten replaces its old rows
    assert len(mf.load("smoke")) == 2


def test_missing_manifest_says_which_command_to_run(data_root):
    with pytest.raises(mf.ManifestError, match="python -m helpers data --profile course"):
        mf.load("course")
