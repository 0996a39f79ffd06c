"""Per-image policy baselines: torchvision's AutoAugment/RandAugment/TrivialAugmentWide, AugMix,
PixMix and IPMix, checked against torchvision, the references' PIL operations and their formulas."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image, ImageEnhance, ImageOps
from torch.utils.data import DataLoader
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from diffusemix_bench.augment import AugContext, create_aug
from diffusemix_bench.augment.fractals import FractalBank
from diffusemix_bench.augment.policies import ops
from diffusemix_bench.augment.policies.augmix import AugMix, AugMixPolicy
from diffusemix_bench.augment.policies.ipmix import IPMix, patch_mix, random_elements, random_pixels
from diffusemix_bench.augment.policies.mixing_pictures import MixingPictures
from diffusemix_bench.augment.policies.ops import mixing_weights
from diffusemix_bench.augment.policies.pixmix import PixMix, mix_add, mix_multiply, sample_ab
from diffusemix_bench.errors import ConfigError
from diffusemix_bench.training.run import train
from tests.conftest import compose_config

SEEDS = range(24)


def image(seed: int = 0, size: int = 32) -> torch.Tensor:
    """A smooth random uint8 RGB image (upsampled noise), so interpolation differences stay small."""
    g = torch.Generator().manual_seed(seed)
    small = (torch.rand(3, size // 4, size // 4, generator=g) * 255).to(torch.uint8)
    return F.resize(small, [size, size], antialias=True)


def ctx(dataset: str = "cifar100", loss: str = "ce", size: int = 32) -> AugContext:
    return AugContext(num_classes=10, dataset_name=dataset, image_size=size, loss=loss)


def bank(n: int = 5, size: int = 48, seed: int = 1) -> FractalBank:
    rng = np.random.default_rng(seed)
    return FractalBank(rng.integers(0, 256, size=(n, 3, size, size), dtype=np.uint8))


@functools.cache
def dataset_defaults(name: str) -> dict:
    """The per-dataset table of conf/aug/<name>.yaml (the references' CIFAR and ImageNet values)."""
    return OmegaConf.to_container(compose_config([f"aug={name}"]).aug.dataset_defaults)


def make_augmix(context: AugContext, **settings) -> AugMix:
    return AugMix(context, dataset_defaults=dataset_defaults("augmix"), **settings)


def make_pixmix(context: AugContext, **settings) -> PixMix:
    return PixMix(context, dataset_defaults=dataset_defaults("pixmix"), **settings)


def make_ipmix(context: AugContext, **settings) -> IPMix:
    return IPMix(context, dataset_defaults=dataset_defaults("ipmix"), **settings)


def seeded(fn, seed: int, *args):
    torch.manual_seed(seed)
    return fn(*args)


class ListDataset(torch.utils.data.Dataset):
    """A training split stand-in: (image, label, index) with no transform."""

    def __init__(self, images: list[torch.Tensor]) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return self.images[i], i % 3, i


# torchvision policies


@pytest.mark.parametrize(
    ("name", "dataset", "reference"),
    [
        ("autoaugment", "cifar100", lambda: v2.AutoAugment(v2.AutoAugmentPolicy.CIFAR10)),
        ("autoaugment", "flowers102", lambda: v2.AutoAugment(v2.AutoAugmentPolicy.IMAGENET)),
        ("randaugment", "cifar100", lambda: v2.RandAugment(num_ops=2, magnitude=9)),
        ("trivialaugment", "cub", lambda: v2.TrivialAugmentWide()),
    ],
)
def test_torchvision_policies_equal_torchvision_under_the_same_seed(name, dataset, reference):
    policy = create_aug({"name": name}, ctx(dataset)).sample_transform()
    ref = reference()
    changed = 0
    for seed in SEEDS:
        img = image(seed)
        ours = seeded(policy, seed, img)
        assert torch.equal(ours, seeded(ref, seed, img)), seed
        changed += not torch.equal(ours, img)
    assert changed >= len(SEEDS) // 2


def test_torchvision_policy_settings_are_checked():
    assert (
        create_aug({"name": "autoaugment", "policy": "svhn"}, ctx()).transform.policy
        == v2.AutoAugmentPolicy.SVHN
    )
    with pytest.raises(ConfigError, match="aug.policy"):
        create_aug({"name": "autoaugment", "policy": "cifar100"}, ctx())
    with pytest.raises(ConfigError, match="aug.magnitude"):
        create_aug({"name": "randaugment", "magnitude": 31}, ctx())
    with pytest.raises(ConfigError, match="aug.interpolation"):
        create_aug({"name": "trivialaugment", "interpolation": "cubic"}, ctx())
    # Each range message names the method that holds the setting.
    for name, given in (("randaugment", {"magnitude": 0}), ("trivialaugment", {})):
        with pytest.raises(ConfigError, match=rf"aug.num_magnitude_bins of aug={name} must be >= 2, got 1"):
            create_aug({"name": name, "num_magnitude_bins": 1, **given}, ctx())
    with pytest.raises(ConfigError, match=r"aug.num_ops of aug=randaugment must be >= 0"):
        create_aug({"name": "randaugment", "num_ops": -1}, ctx())


# The AugMix-family operations against the PIL calls of google-research/augmix


def _pil(img: torch.Tensor) -> Image.Image:
    return Image.fromarray(img.permute(1, 2, 0).numpy())


def _tensor(pil: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.array(pil)).permute(2, 0, 1)


def _noise(seed: int, height: int, width: int) -> torch.Tensor:
    """Uniform uint8 noise: every grey level and sharp edges up to the border."""
    return torch.randint(
        0, 256, (3, height, width), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8
    )


def _affine(pil: Image.Image, matrix: tuple) -> Image.Image:
    return pil.transform(pil.size, Image.AFFINE, matrix, resample=Image.BILINEAR)


@pytest.mark.parametrize(
    "img",
    [image(3), image(4, 64), _noise(0, 33, 47), _noise(1, 40, 24)],
    ids=["smooth32", "smooth64", "noise33x47", "noise40x24"],
)
def test_ops_equal_the_reference_pil_operations_byte_for_byte(img):
    """Every operation gives the bytes of the PIL call google-research/augmix (and IPMix) makes,
    borders included, on smooth and noisy images of odd and non-square sizes, at strengths that
    shrink and extrapolate (factors above 1: PIL's clipping branch)."""
    pil = _pil(img)
    cases = [
        (ops.POSTERIZE, 3, ImageOps.posterize(pil, 3)),
        (ops.SOLARIZE, 180, ImageOps.solarize(pil, 180)),
        (ops.EQUALIZE, 0, ImageOps.equalize(pil)),
        (ops.AUTOCONTRAST, 0, ImageOps.autocontrast(pil)),
        (ops.INVERT, 0, ImageOps.invert(pil)),
        (ops.MIRROR, 0, ImageOps.mirror(pil)),
        (ops.TRANSLATE_X, 3, _affine(pil, (1, 0, 3, 0, 1, 0))),
        (ops.TRANSLATE_Y, -2, _affine(pil, (1, 0, 0, 0, 1, -2))),
        (ops.SHEAR_X, 0.09, _affine(pil, (1, 0.09, 0, 0, 1, 0))),
        (ops.SHEAR_Y, -0.27, _affine(pil, (1, 0, 0, -0.27, 1, 0))),
    ]
    for degrees in (8, -5, 29, 90, 180):
        cases.append((ops.ROTATE, degrees, pil.rotate(degrees, resample=Image.BILINEAR)))
    for factor in (0.4, 1.0, 1.63):
        cases += [
            (ops.COLOR, factor, ImageEnhance.Color(pil).enhance(factor)),
            (ops.CONTRAST, factor, ImageEnhance.Contrast(pil).enhance(factor)),
            (ops.BRIGHTNESS, factor, ImageEnhance.Brightness(pil).enhance(factor)),
            (ops.SHARPNESS, factor, ImageEnhance.Sharpness(pil).enhance(factor)),
        ]
    for op, value, ref in cases:
        assert torch.equal(op.apply(img, value), _tensor(ref)), (op.name, value)


def test_autocontrast_leaves_a_flat_channel_as_pil_does():
    img = image(5)
    img[1] = 77
    assert torch.equal(ops.AUTOCONTRAST.apply(img, 0), _tensor(ImageOps.autocontrast(_pil(img))))


def test_op_strengths_follow_the_reference_formulas():
    # At level 3 on a 32 px crop (augmentations.py: int/float_parameter(level, maxval) = level * maxval / 10).
    expected = {
        "posterize": 3,
        "rotate": 9,
        "solarize": 180,
        "shear_x": 0.09,
        "translate_x": 3,
        "translate_y": 3,
        "color": 0.64,
    }
    by_name = {op.name: op for op in ops.AUGMIX_ALL_OPS + ops.IPMIX_OPS}
    for name, value in expected.items():
        assert by_name[name].magnitude(3.0, 32, 32) == pytest.approx(value), name
    assert {op.name for op in ops.AUGMIX_OPS} == {
        "autocontrast", "equalize", "posterize", "rotate", "solarize", "shear_x", "shear_y", "translate_x", "translate_y"
    }  # fmt: skip
    assert {op.name for op in ops.IPMIX_OPS} - {op.name for op in ops.AUGMIX_OPS} == {"mirror", "invert"}
    # Levels are uniform in [0.1, severity]: at severity 3 a rotation reaches 8 degrees (int(3 * 2.99)),
    # not only torchvision AugMix's bins {0, 3.3, 6.7}.
    torch.manual_seed(0)
    levels = torch.tensor([ops.sample_level(3) for _ in range(2000)])
    assert levels.min() >= 0.1 and levels.max() <= 3
    assert levels.mean() == pytest.approx(1.55, abs=0.06)
    degrees = {ops.ROTATE.magnitude(float(lv), 32, 32) for lv in levels}
    assert degrees == set(range(9))


def test_severity_is_checked():
    with pytest.raises(ConfigError, match="aug.severity"):
        create_aug({"name": "augmix", "severity": 11}, ctx())


# AugMix


def test_augmix_mixes_its_chains_convexly_with_dirichlet_and_beta_weights(monkeypatch):
    policy = make_augmix(ctx(), width=3).policy
    img = image(1)
    fixed = [torch.full_like(img, v) for v in (0, 90, 255)]
    monkeypatch.setattr(policy, "chain", lambda x: fixed.pop(0) if fixed else None)
    torch.manual_seed(5)
    out = policy(img)
    torch.manual_seed(5)
    ws, m = mixing_weights(3, 1.0)
    assert ws.min() >= 0 and ws.sum() == pytest.approx(1.0) and 0 <= m <= 1
    expected = (1 - m) * img.float() + m * (ws[1] * 90 + ws[2] * 255)
    assert out.dtype == torch.uint8
    assert (out.float() - expected).abs().max() <= 0.5


def test_augmix_output_lies_between_the_original_and_its_chains(monkeypatch):
    policy = make_augmix(ctx(), width=3).policy
    real_chain = policy.chain
    for seed in range(8):
        img = image(seed)
        chains: list[torch.Tensor] = []
        monkeypatch.setattr(
            policy, "chain", lambda x, chains=chains: chains.append(real_chain(x)) or chains[-1]
        )
        out = seeded(policy, seed, img)
        stack = torch.stack([img, *chains])
        assert len(chains) == 3
        assert (out >= stack.min(0).values).all() and (out <= stack.max(0).values).all()
        assert not torch.equal(out, img)


def test_augmix_defaults_per_dataset():
    cifar, other = make_augmix(ctx("cifar100")).policy, make_augmix(ctx("imagenet", size=64)).policy
    assert (cifar.severity, other.severity) == (3, 1)
    assert (cifar.width, cifar.depth, cifar.alpha) == (3, -1, 1.0)
    assert cifar.ops == ops.AUGMIX_OPS
    assert make_augmix(ctx(), all_ops=True).policy.ops == ops.AUGMIX_ALL_OPS


def test_augmix_jsd_sample_is_clean_then_two_independent_mixes():
    aug = make_augmix(ctx(loss="jsd"))
    assert aug.default_loss == "jsd" and aug.supports_jsd
    # The policy runs in the training-set wrapper, after the split's own crop and flip.
    assert aug.sample_transform() is None
    images = [image(s) for s in range(4)]
    wrapped = aug.train_dataset(ListDataset(images))
    torch.manual_seed(0)
    items = [wrapped[i] for i in range(4)]
    for (views, label, index), img in zip(items, images):
        assert views.shape == (3, 3, 32, 32) and views.dtype == torch.uint8
        assert torch.equal(views[0], img)
        assert label == index % 3
    assert any(not torch.equal(v[1], v[2]) for v, _, _ in items)

    batch = torch.stack([v for v, _, _ in items]).float() / 255  # (N, 3 views, C, H, W)
    targets = torch.eye(10)[:4]
    out = aug.apply(batch, targets, torch.arange(4), None)
    assert out.num_views == 3 and out.inputs.shape == (12, 3, 32, 32)
    for view in range(3):
        assert torch.equal(out.inputs[view * 4 : (view + 1) * 4], batch[:, view])
    assert torch.equal(out.targets, targets)
    with pytest.raises(ValueError, match="3 views"):
        aug.apply(batch[:, 0], targets, torch.arange(4), None)


def test_augmix_without_jsd_is_a_single_view_policy():
    aug = make_augmix(ctx(loss="ce"))
    assert isinstance(aug.sample_transform(), AugMixPolicy)
    split = ListDataset([image()])
    assert aug.train_dataset(split) is split
    batch = torch.rand(2, 3, 32, 32)
    out = aug.apply(batch, torch.eye(10)[:2], torch.arange(2), None)
    assert out.num_views == 1 and out.inputs is batch


# PixMix


def test_pixmix_mixing_operations_match_their_formulas():
    x = torch.tensor([0.0, 0.25, 0.5, 1.0])
    y = torch.tensor([1.0, 0.75, 0.0, 0.5])
    # add: ((a (2x - 1) + b (2y - 1)) + 1) / 2
    expected = torch.tensor([0.6 * -1 + 0.3 * 1, 0.6 * -0.5 + 0.3 * 0.5, 0.0 + 0.3 * -1, 0.6 + 0.0]) / 2 + 0.5
    assert torch.allclose(mix_add(x, y, 0.6, 0.3), expected)
    # multiply: (2x)^a (2y)^b / 2
    assert torch.allclose(mix_multiply(x, y, 2.0, 1.0), (2 * x) ** 2 * (2 * y) / 2)
    # a = 1, b = 0 leaves x unchanged; a zero partner with negative b stays finite.
    assert torch.allclose(mix_add(x, y, 1.0, 0.0), x)
    assert torch.allclose(mix_multiply(x, y, 1.0, 0.0), x)
    assert torch.isfinite(mix_multiply(x, torch.zeros(4), 1.5, -0.7)).all()


def test_pixmix_weights_come_from_the_two_beta_branches():
    torch.manual_seed(0)
    pairs = torch.tensor([sample_ab(3) for _ in range(3000)])
    a, b = pairs[:, 0], pairs[:, 1]
    blend = (b >= 0) & (a <= 1)
    extrapolate = (a >= 1) & (a <= 2) & (b <= 0) & (b >= -1)
    assert (blend | extrapolate).all()
    assert blend.float().mean() == pytest.approx(0.5, abs=0.04)
    # Beta(3, 1) has mean 3/4 and Beta(1, 3) mean 1/4.
    assert a[blend].mean() == pytest.approx(0.75, abs=0.02)
    assert b[blend].mean() == pytest.approx(0.25, abs=0.02)
    assert a[extrapolate].mean() == pytest.approx(1.25, abs=0.02)


def test_pixmix_with_k0_never_mixes_and_otherwise_uses_the_picture():
    img = image(2)
    pic_a, pic_b = torch.zeros_like(img), torch.full_like(img, 255)
    pixmix = make_pixmix(ctx(), bank=bank(), k=0).sample_transform()
    unchanged = 0
    for seed in SEEDS:
        out = seeded(pixmix.mix, seed, img, pic_a)
        assert torch.equal(out, seeded(pixmix.mix, seed, img, pic_b))
        unchanged += torch.equal(out, img)
    # The image itself is kept with probability 1/2 (else one augmentation operation).
    assert len(SEEDS) // 4 <= unchanged <= 3 * len(SEEDS) // 4
    pixmix = make_pixmix(ctx(), bank=bank(), k=4).sample_transform()
    differs = sum(
        not torch.equal(seeded(pixmix.mix, s, img, pic_a), seeded(pixmix.mix, s, img, pic_b)) for s in SEEDS
    )
    assert differs >= len(SEEDS) // 3


def test_pixmix_output_is_a_valid_image_even_when_mixing_extrapolates():
    img = image(4)
    pixmix = make_pixmix(ctx(), bank=bank(), k=4, beta=0.2).sample_transform()
    saturated = 0
    for seed in SEEDS:
        out = seeded(pixmix, seed, img)
        assert out.shape == img.shape and out.dtype == torch.uint8
        saturated += bool(((out == 0) | (out == 255)).float().mean() > 0.2)
    # Strong extrapolation (beta 0.2) pushes values out of range: they are clipped, not wrapped.
    assert saturated > 0


def test_pixmix_pictures_come_from_the_fractal_bank_per_dataset():
    cifar = make_pixmix(ctx("cifar100"), bank=bank(n=5, size=48))
    assert (cifar.k, cifar.beta, cifar.severity) == (4, 3.0, 3)
    pictures = cifar.sample_transform().pictures
    # Resize(36) + RandomCrop(32) on CIFAR (pixmix cifar.py).
    assert pictures.pictures.shape == (5, 3, 36, 36)
    other = make_pixmix(ctx("flowers102", size=224), bank=bank(n=2, size=64))
    assert (other.beta, other.severity) == (4.0, 1)
    # Resize(256) + RandomCrop(224) on ImageNet.
    assert other.sample_transform().pictures.pictures.shape == (2, 3, 256, 256)
    with pytest.raises(ConfigError, match="fractals"):
        make_pixmix(ctx()).sample_transform()


def test_mixing_picture_is_a_random_crop_of_a_bank_picture():
    pictures = MixingPictures(
        torch.arange(2 * 3 * 6 * 6, dtype=torch.int64).remainder(251).to(torch.uint8).reshape(2, 3, 6, 6), 1.5
    )
    crops = set()
    for seed in range(40):
        crop = seeded(pictures.sample, seed, 4, 4)
        found = [
            (i, t, left)
            for i in range(2)
            for t in range(3)
            for left in range(3)
            if torch.equal(pictures.pictures[i, :, t : t + 4, left : left + 4], crop)
        ]
        assert len(found) == 1
        crops.add(found[0])
    assert len(crops) > 6
    # Larger images than the bank was prepared for get a resized picture.
    assert pictures.sample(8, 8).shape == (3, 8, 8)


# IPMix


def test_patch_mix_changes_one_rectangle_of_side_2_to_patch_size():
    img, partner = torch.zeros(3, 32, 32, dtype=torch.uint8), torch.full((3, 32, 32), 255, dtype=torch.uint8)
    take_partner = lambda x, y, beta: y  # noqa: E731
    shapes = set()
    for seed in range(40):
        out = seeded(patch_mix, seed, img, partner, 8, take_partner, 3.0)
        rows, cols = (out[0] > 0).any(1).nonzero().flatten(), (out[0] > 0).any(0).nonzero().flatten()
        h, w = len(rows), len(cols)
        assert 2 <= h <= 8 and 2 <= w <= 8
        assert int((out[0] > 0).sum()) == h * w  # one solid rectangle
        assert rows.max() - rows.min() + 1 == h and cols.max() - cols.min() + 1 == w
        assert (out[:, out[0] == 0] == 0).all()
        shapes.add((h, w))
    assert (8, 8) in shapes and len(shapes) > 3
    # A patch size beyond the image is the whole image when square.
    outs = [seeded(patch_mix, s, img, partner, 224, take_partner, 3.0) for s in range(10)]
    assert any(bool((o == 255).all()) for o in outs)


def test_random_pixel_and_element_masks_pick_each_value_from_one_image():
    x, y = torch.zeros(3, 16, 16), torch.ones(3, 16, 16)
    torch.manual_seed(0)
    pixels = random_pixels(x, y, 3.0)
    assert ((pixels == 0) | (pixels == 1)).all()
    assert (pixels == pixels[:1]).all()  # a whole pixel comes from one image
    elements = [random_elements(x, y, 3.0) for _ in range(5)]
    assert all(((e == 0) | (e == 1)).all() for e in elements)
    assert any(not (e == e[:1]).all() for e in elements)  # channels chosen independently


def test_ipmix_defaults_per_dataset():
    cifar = make_ipmix(ctx("cifar100"), bank=bank())
    assert (cifar.k, cifar.t, cifar.beta, cifar.severity, cifar.alpha) == (3, 3, 3.0, 3, 1.0)
    assert cifar.patch_sizes == [4, 8, 16, 32] and cifar.augmented_partner_prob == 0.0
    other = make_ipmix(ctx("imagenet", size=64), bank=bank())
    assert (other.beta, other.severity) == (4.0, 1)
    assert other.patch_sizes == [4, 8, 16, 32, 64, 224] and other.augmented_partner_prob == 0.5
    assert IPMix.default_loss == "jsd" and IPMix.supports_jsd
    with pytest.raises(ConfigError, match="patch_sizes"):
        make_ipmix(ctx(), bank=bank(), patch_sizes=[1, 4])


def test_settings_that_mix_nothing_or_wholly_are_warned_about(caplog):
    """Values a user may not mean, taken as they say but warned about: PixMix's k=0 and IPMix's t=0
    mix nothing in (IPMix's then leaves images as they are), and IPMix patch sizes larger than the
    crop are whole images. The reference values warn of nothing."""
    with caplog.at_level("WARNING"):
        make_pixmix(ctx(), bank=bank())
        make_ipmix(ctx(), bank=bank())
    assert caplog.text == ""
    with caplog.at_level("WARNING"):
        make_pixmix(ctx(), bank=bank(), k=0)
        policy = make_ipmix(ctx(), bank=bank(), t=0).policy
        make_ipmix(ctx("imagenet", size=32), bank=bank())
    assert "aug.k=0: PixMix mixes no picture into any image" in caplog.text
    assert "aug.t=0: IPMix's chains are empty, so every image is left as it is" in caplog.text
    assert "aug.patch_sizes [64, 224] are larger than the 32 px crop" in caplog.text
    img = image(3)
    assert torch.equal(seeded(policy, 0, img), img)  # t=0: what the warning says


def test_ipmix_is_a_convex_mix_of_chains_and_uses_the_picture_only_in_patches(monkeypatch):
    policy = make_ipmix(ctx(), bank=bank()).policy
    img, pic_a, pic_b = (
        image(5),
        torch.zeros(3, 32, 32, dtype=torch.uint8),
        torch.full((3, 32, 32), 255, dtype=torch.uint8),
    )
    seeds = range(12)
    differs = sum(
        not torch.equal(seeded(policy.mix, s, img, pic_a), seeded(policy.mix, s, img, pic_b)) for s in seeds
    )
    assert differs >= len(seeds) // 3
    # Patches mixed only with augmented copies of the image: the picture no longer matters.
    policy.augmented_partner_prob = 1.0
    for seed in seeds:
        assert torch.equal(seeded(policy.mix, seed, img, pic_a), seeded(policy.mix, seed, img, pic_b))
    fixed = [torch.full_like(img, v) for v in (10, 20, 250)]
    monkeypatch.setattr(policy, "chain", lambda x, pic: fixed.pop(0))
    out = seeded(policy.mix, 7, img, pic_a)
    torch.manual_seed(7)
    ws, m = mixing_weights(3, 1.0)
    expected = (1 - m) * img.float() + m * (ws[0] * 10 + ws[1] * 20 + ws[2] * 250)
    assert (out.float() - expected).abs().max() <= 0.5


def test_ipmix_jsd_views_share_one_mixing_picture(monkeypatch):
    aug = make_ipmix(ctx(loss="jsd"), bank=bank())
    assert aug.sample_transform() is None
    policy = aug.policy
    seen = []
    real_mix = policy.mix
    monkeypatch.setattr(policy, "mix", lambda x, pic: seen.append(pic) or real_mix(x, pic))
    img = image(6)
    views, label, index = aug.train_dataset(ListDataset([img]))[0]
    assert views.shape == (3, 3, 32, 32) and torch.equal(views[0], img)
    assert len(seen) == 2 and seen[0] is seen[1]
    out = aug.apply(views[None].float() / 255, torch.eye(10)[:1], torch.arange(1), None)
    assert out.num_views == 3 and out.inputs.shape == (3, 3, 32, 32)


def test_ipmix_runs_reproducibly_in_dataloader_workers():
    aug = make_ipmix(ctx(loss="jsd"), bank=bank())
    wrapped = aug.train_dataset(ListDataset([image(s) for s in range(8)]))

    def batches(seed: int) -> torch.Tensor:
        loader = DataLoader(
            wrapped, batch_size=4, num_workers=2, generator=torch.Generator().manual_seed(seed)
        )
        return torch.cat([views for views, _, _ in loader])

    first = batches(0)
    assert torch.equal(first, batches(0))
    assert not torch.equal(first, batches(1))


# The loss each method resolves to, through the real config (every method also trains one step
# with its defaults in tests/test_train.py).


@pytest.mark.parametrize(
    ("overrides", "loss"),
    [
        (["aug=augmix"], "jsd"),
        (["aug=augmix", "loss=ce"], "ce"),
        (["aug=ipmix"], "jsd"),
        (["aug=ipmix", "loss=ce"], "ce"),
    ],
    ids=lambda v: "-".join(v) if isinstance(v, list) else v,
)
def test_trains_one_step(overrides, loss, make_cfg, tmp_path):
    # A tiny fractal bank in the test's own cache keeps PixMix/IPMix fast and the user's cache clean;
    # a small model and one batch keep the step cheap (every model is trained in test_train).
    small_bank = ["fractals.count=4", "fractals.size=32", f"paths.cache_dir={tmp_path / 'cache'}"]
    cheap = [
        "model=timm",
        "model.name=resnet10t",
        "trainer.limit_train_batches=1",
        "trainer.limit_val_batches=1",
    ]
    metrics = train(make_cfg(overrides + small_bank + cheap + ["run_test=false"]))
    assert metrics["loss"] == loss
    assert metrics["optimizer_steps"] >= 1
    assert metrics["aug"] == overrides[0].split("=")[1]
