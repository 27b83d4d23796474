"""Device batches: crops, flips and normalisation against torchvision's reference transforms."""

import torch
from torchvision.transforms import v2

from bookcover.data.batches import MEAN, STD, eval_batch, random_crop_flip, train_batch


def _pixels(b=4, h=20, w=18):
    return torch.randint(0, 256, (b, h, w, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


def test_eval_batch_matches_torchvision_center_crop_and_normalise():
    px = _pixels()
    ours = eval_batch(px, 12)
    ref = v2.Compose([v2.CenterCrop(12), v2.ToDtype(torch.float32, scale=True), v2.Normalize(MEAN, STD)])
    expected = torch.stack([ref(p.permute(2, 0, 1)) for p in px])
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-5)
    assert ours.is_contiguous(memory_format=torch.channels_last)


def test_random_crops_are_windows_of_the_source():
    px = _pixels(b=16)
    gen = torch.Generator().manual_seed(1)
    crops = random_crop_flip(px, 10, flip=True, generator=gen)
    assert crops.shape == (16, 10, 10, 3)
    for img, crop in zip(px, crops, strict=True):
        found = False
        for top in range(img.shape[0] - 9):
            for left in range(img.shape[1] - 9):
                window = img[top : top + 10, left : left + 10]
                if torch.equal(window, crop) or torch.equal(window.flip(1), crop):
                    found = True
        assert found


def test_flip_happens_about_half_the_time_and_seed_repeats():
    px = torch.arange(8, dtype=torch.uint8).repeat(256, 8, 1)[..., None].expand(256, 8, 8, 3).contiguous()
    crops = random_crop_flip(px, 8, True, torch.Generator().manual_seed(3))
    flipped = (crops[:, 0, 0, 0] == 7).float().mean()
    assert 0.35 < flipped < 0.65
    again = random_crop_flip(px, 8, True, torch.Generator().manual_seed(3))
    assert torch.equal(crops, again)


def test_train_batch_shape_and_layout():
    x = train_batch(_pixels(), 16, True, torch.Generator().manual_seed(0))
    assert x.shape == (4, 3, 16, 16) and x.dtype == torch.float32
    assert x.is_contiguous(memory_format=torch.channels_last)
