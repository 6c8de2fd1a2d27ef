import pytest
import torch

from distill_core.data import DatasetInfo
from distill_core.imageset import ImageSetArtifact, load_image_set, save_image_set, tile_images

INFO = DatasetInfo("t", 3, 1, 8, (0.5,), (0.25,), ("a", "b", "c"), flip=False)


def test_round_trip_and_checksum_refusal(tmp_path):
    art = ImageSetArtifact(torch.rand(6, 1, 8, 8), torch.tensor([0, 0, 1, 1, 2, 2]), INFO, "lpld", {"ipc": 2})
    save_image_set(tmp_path, art)
    back = load_image_set(tmp_path)
    assert torch.equal(back.images, art.images) and back.ipc == 2 and back.extra == {"ipc": 2}
    raw = torch.load(tmp_path / "images.pt", weights_only=True)
    raw["images"][0, 0, 0, 0] += 0.5
    torch.save(raw, tmp_path / "images.pt")
    with pytest.raises(ValueError, match="checksum"):
        load_image_set(tmp_path)


def test_tile_images_upscales_and_lays_out_rows():
    images = torch.zeros(5, 1, 8, 8)
    images[1] = 1.0
    img = tile_images(images, ncol=3, pad=2, min_tile=16)
    assert img.mode == "L" and img.size == (3 * 18 + 2, 2 * 18 + 2)  # 8 px -> 16 px tiles, 2 rows
    px = img.load()
    assert px[2 + 18 + 5, 2 + 5] == 255 and px[2 + 5, 2 + 5] == 0  # tile 1 white, tile 0 black
    assert px[0, 0] == 255  # padding is white
    assert tile_images(torch.rand(2, 3, 4, 4), ncol=2, min_tile=4).mode == "RGB"
