import numpy as np
import pytest
from PIL import Image

from helpers.inpaint import masks as mk


@pytest.mark.parametrize("ratio", [0.05, 0.15, 0.3])
def test_free_form_reaches_the_ratio_and_is_seeded(ratio):
    a = mk.free_form(384, 384, ratio, seed=3)
    assert a.dtype == bool and a.shape == (384, 384)
    assert ratio <= mk.hole_ratio(a) < ratio + 0.03
    assert np.array_equal(a, mk.free_form(384, 384, ratio, seed=3))
    assert not np.array_equal(a, mk.free_form(384, 384, ratio, seed=4))


def test_coco_object_mask_picks_the_largest_plain_object():
    instances = {"images": [{"id": 7, "width": 200, "height": 100}], "annotations": [
        {"image_id": 7, "iscrowd": 0, "area": 400, "segmentation": [[10, 10, 30, 10, 30, 30, 10, 30]]},
        {"image_id": 7, "iscrowd": 0, "area": 1600, "segmentation": [[100, 20, 140, 20, 140, 60, 100, 60]]},
        {"image_id": 7, "iscrowd": 1, "area": 3000, "segmentation": {"counts": [], "size": [100, 200]}},
    ]}
    m = mk.coco_object(instances, 7, 400, 200)  # drawn at twice the size
    assert m.shape == (200, 400)
    ys, xs = np.nonzero(m)
    assert 195 <= xs.min() <= 205 and 275 <= xs.max() <= 285
    assert mk.coco_object(instances, 8, 10, 10) is None


def test_folder_masks_are_matched_by_name_and_checked(tmp_path):
    hole = np.zeros((50, 80), np.uint8)
    hole[10:20, 10:30] = 255
    Image.fromarray(hole).save(tmp_path / "000000000042.png")
    m = mk.from_folder(tmp_path, "000000000042", 160, 100)
    assert m.shape == (100, 160) and m.sum() == 20 * 40
    with pytest.raises(mk.MaskError, match="no mask for '7'.*add 7.png"):
        mk.from_folder(tmp_path, "7", 10, 10)
    Image.new("L", (8, 8), 0).save(tmp_path / "empty.png")
    with pytest.raises(mk.MaskError, match="no hole"):
        mk.from_folder(tmp_path, "empty", 8, 8)
    (tmp_path / "broken.png").write_bytes(b"")
    with pytest.raises(mk.MaskError, match="broken.png: zero-byte"):
        mk.from_folder(tmp_path, "broken", 8, 8)
