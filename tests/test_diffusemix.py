"""DiffuseMix: half masks, Eq. 1-3 composition, training modes, Table 7 arms, JSD views, store checks, Figure 4."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from omegaconf import open_dict
from PIL import Image
from torch.utils.data import DataLoader

from diffusemix_bench.augment import AugContext, create_aug
from diffusemix_bench.augment.diffusemix.augmentation import DiffuseMix, DiffuseMixConfig
from diffusemix_bench.augment.diffusemix.callbacks import DiffuseMixEpochCallback, DiffuseMixFigureCallback
from diffusemix_bench.augment.diffusemix.compose import (
    COMPONENTS,
    blend_fractal,
    compose_component,
    diffusemix,
    hybrid,
    resize_fractals,
)
from diffusemix_bench.augment.diffusemix.figure4 import (
    COLUMNS,
    HEADER_PX,
    PADDING_PX,
    figure4_stages,
    write_figure4,
)
from diffusemix_bench.augment.diffusemix.masks import (
    MASK_SETS,
    half_mask_templates,
    mask_kinds,
    sample_half_masks,
)
from diffusemix_bench.data.splits import build_splits
from diffusemix_bench.data.transforms import train_transform
from diffusemix_bench.errors import ConfigError
from diffusemix_bench.generation.store import EditStore, MissingEditError, split_indices
from diffusemix_bench.training.run import train
from tests.conftest import compose_config

PROMPTS = 3
BASE = [
    "aug=diffusemix",
    "dataset=cifar100",
    "fractals.count=6",
    "fractals.size=32",
    "fractals.points=20000",
    "generator.prompts=[autumn,snowy,sunset]",
    "aug.figure_images=2",
]


def synthetic_edit(image: torch.Tensor, k: int) -> torch.Tensor:
    """Prompt k's stand-in edit: the image darkened by k + 2. Pixel-wise with 0 -> 0, so it commutes
    with crops, flips and zero padding: a stack transformed jointly keeps edit == original // (k + 2)."""
    return image // (k + 2)


def full_size_edit(image: torch.Tensor, k: int, resolution: int) -> torch.Tensor:
    """Prompt k's stand-in for the model's full-size output (generator.keep_full_size)."""
    from diffusemix_bench.augment.diffusemix.compose import square

    return synthetic_edit(square(image, resolution), k)


def fill_store(cfg, keep=lambda i, k: True, full_edit=full_size_edit) -> EditStore:
    train_set = build_splits(cfg.dataset, cfg.paths.data_dir).train
    store = EditStore.from_config(cfg, cfg.dataset.name, "train")
    resolution = int(cfg.generator.resolution)
    for i, si in enumerate(split_indices(train_set)):
        image = train_set.load_image(i)
        for k, pid in enumerate(store.prompt_ids):
            if keep(i, k):
                full = full_edit(image, k, resolution) if store.keep_full_size else None
                store.write(si, pid, synthetic_edit(image, k), full=full)
    store.close()
    return store


@pytest.fixture
def dm(make_cfg, tmp_path):
    """``dm(overrides, loss=...)`` -> (cfg, aug, training split); the edit store is filled."""

    def make(overrides=(), loss="jsd", fill=True, full_edit=full_size_edit):
        cfg = make_cfg(BASE + [f"paths.cache_dir={tmp_path / 'cache'}"] + list(overrides))
        if fill:
            fill_store(cfg, full_edit=full_edit)
        train_set = build_splits(cfg.dataset, cfg.paths.data_dir).train
        train_set.transform = train_transform("pad_crop", 32, 32, padding=4, hflip=True)
        ctx = AugContext(
            num_classes=100, dataset_name="cifar100", image_size=32, seed=0, loss=loss, config=cfg
        )
        return cfg, create_aug(cfg.aug, ctx), train_set

    return make


def first_batch(dataset, n: int = 9) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    images, labels, indices = next(iter(DataLoader(dataset, batch_size=n, shuffle=False)))
    return images.float() / 255.0, labels, indices


def soft(labels: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.one_hot(labels, 100).float()


def explain(
    view: torch.Tensor, original: torch.Tensor, edit: torch.Tensor, aug: DiffuseMix, atol: float = 1e-5
) -> set:
    """The (mask kind, fractal) pairs under which ``view`` is Eq. 3 of this original and edit."""
    _, h, w = view.shape
    masks = half_mask_templates(aug.kinds, h, w, aug.seam_px)
    fractals = aug._fractal_bank(h, w, view.device).float() / 255.0
    found = set()
    for k, mask in enumerate(masks):
        for f, fractal in enumerate(fractals):
            expected = (1 - aug.lam) * (original * mask + edit * (1 - mask)) + aug.lam * fractal
            if torch.allclose(view, expected, atol=atol):
                found.add((k, f))
    return found


# -- masks ------------------------------------------------------------------------------------


def test_mask_sets():
    assert set(MASK_SETS["paper4"]) == {"left", "right", "top", "bottom"}
    # The official code keeps the original on the left or on top; Table 9 row 2 is the same pair.
    assert set(MASK_SETS["official2"]) == set(MASK_SETS["hv"]) == {"left", "top"}
    assert MASK_SETS["vertical"] == ("left",)
    # The official code's "vertical" stacks the halves (np.vstack), original on top: Table 9's other reading.
    assert MASK_SETS["official_vertical"] == ("top",)
    from diffusemix_bench.config import DiffuseMixConfig, choices_of

    assert set(choices_of(DiffuseMixConfig, "masks")) == set(MASK_SETS)
    with pytest.raises(ConfigError, match="aug.masks"):
        mask_kinds("five")
    with pytest.raises(ConfigError, match="seam_px"):
        half_mask_templates(["left"], 8, 8, seam_px=-1)


@pytest.mark.parametrize("seam", [0, 3, 20])
@pytest.mark.parametrize("hw", [(8, 8), (7, 9), (32, 48)])
def test_masks_cover_exactly_half(hw, seam):
    h, w = hw
    masks = half_mask_templates(["left", "right", "top", "bottom"], h, w, seam)
    assert masks.shape == (4, 1, h, w) and masks.dtype == torch.float32
    left, right, top, bottom = masks[:, 0]
    for m in (left, right, top, bottom):
        assert abs(m.mean().item() - 0.5) < 1e-6
        assert m.min() >= 0 and m.max() <= 1
    assert torch.allclose(left + right, torch.ones(h, w)) and torch.allclose(top + bottom, torch.ones(h, w))
    # 1 = original: "left" keeps the original on the left, "top" on top; constant along the seam.
    assert (left == left[:1]).all() and (top == top[:, :1]).all()
    assert (left[0, 1:] <= left[0, :-1]).all() and (top[1:, 0] <= top[:-1, 0]).all()
    if seam < min(h, w):
        assert left[:, 0].eq(1).all() and left[:, -1].eq(0).all()
        assert top[0].eq(1).all() and top[-1].eq(0).all()
    else:  # a seam wider than the image spans it
        assert 0.5 < left[0, 0] < 1 and 0 < left[0, -1] < 0.5
    if seam == 0 and h % 2 == 0 and w % 2 == 0:
        assert set(masks.unique().tolist()) == {0.0, 1.0}


def test_seam_is_a_linear_monotone_ramp():
    profile = half_mask_templates(["left"], 4, 40, seam_px=10)[0, 0, 0]
    assert (profile[1:] <= profile[:-1]).all()
    ramp = profile[(profile > 0) & (profile < 1)]
    assert len(ramp) == 10
    assert torch.allclose(ramp[:-1] - ramp[1:], torch.full((9,), 0.1), atol=1e-6)
    # Centred on the midline: the ramp spans columns 15..24 of 40.
    assert profile[14] == 1 and profile[25] == 0
    hard = half_mask_templates(["left"], 4, 41, seam_px=0)[0, 0, 0]
    assert hard.tolist() == [1.0] * 20 + [0.5] + [0.0] * 20


def test_sampled_masks_are_per_sample_and_seeded():
    masks, ids = sample_half_masks(64, 6, 10, "paper4", generator=torch.Generator().manual_seed(0))
    assert masks.shape == (64, 1, 6, 10) and set(ids.tolist()) == {0, 1, 2, 3}
    templates = half_mask_templates(MASK_SETS["paper4"], 6, 10)
    assert all(torch.equal(masks[i], templates[ids[i]]) for i in range(64))
    _, again = sample_half_masks(64, 6, 10, "paper4", generator=torch.Generator().manual_seed(0))
    assert torch.equal(ids, again)
    _, one = sample_half_masks(16, 6, 10, "vertical", generator=torch.Generator().manual_seed(0))
    assert one.eq(0).all()


# -- composition ------------------------------------------------------------------------------


@pytest.mark.parametrize("seam", [0, 4])
@pytest.mark.parametrize("kind", ["left", "right", "top", "bottom"])
def test_composition_is_eq3_pixel_by_pixel(kind, seam):
    g = torch.Generator().manual_seed(1)
    n, c, h, w, lam = 2, 3, 6, 8, 0.2
    original, edit, fractal = (torch.rand(n, c, h, w, generator=g) for _ in range(3))
    masks = half_mask_templates([kind], h, w, seam).expand(n, -1, -1, -1)
    out = diffusemix(original, edit, masks, fractal, lam)
    hyb = hybrid(original, edit, masks)
    for i in range(n):
        for ch in range(c):
            for y in range(h):
                for x in range(w):
                    m = masks[i, 0, y, x].item()
                    i_, e_, f_ = (
                        original[i, ch, y, x].item(),
                        edit[i, ch, y, x].item(),
                        fractal[i, ch, y, x].item(),
                    )
                    h_ = i_ * m + e_ * (1 - m)  # Eq. 1 (M on the original, as in Eq. 3)
                    assert abs(hyb[i, ch, y, x].item() - h_) < 1e-6
                    assert abs(out[i, ch, y, x].item() - ((1 - lam) * h_ + lam * f_)) < 1e-6  # Eq. 3
    assert torch.allclose(compose_component("hybrid_fractal", original, edit, masks, fractal, lam), out)
    assert torch.allclose(blend_fractal(hyb, fractal, lam), out)  # Eq. 2


def test_table7_components_compose_the_right_parts():
    g = torch.Generator().manual_seed(2)
    original, edit, fractal = (torch.rand(2, 3, 4, 6, generator=g) for _ in range(3))
    masks = half_mask_templates(["top", "right"], 4, 6)
    hyb = original * masks + edit * (1 - masks)
    expected = {
        "originals": original,
        "originals_fractal": 0.7 * original + 0.3 * fractal,
        "edits": edit,
        "edits_fractal": 0.7 * edit + 0.3 * fractal,
        "hybrid": hyb,
        "hybrid_fractal": 0.7 * hyb + 0.3 * fractal,
    }
    assert set(expected) == set(COMPONENTS)
    for component, target in expected.items():
        out = compose_component(component, original, edit, masks, fractal, 0.3)
        assert torch.allclose(out, target, atol=1e-6), component
    assert compose_component("originals", original, edit, None, None, 0.3) is original
    with pytest.raises(ConfigError, match="aug.components"):
        compose_component("everything", original, edit, masks, fractal, 0.3)


def test_fractals_are_resized_to_the_batch():
    bank = torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8)
    out = resize_fractals(bank, 8, 12)
    assert out.shape == (2, 3, 8, 12) and out.dtype == torch.float32 and out.min() >= 0 and out.max() <= 1
    assert torch.equal(resize_fractals(bank, 16, 16), bank.float() / 255)


# -- the training set ---------------------------------------------------------------------------


def test_original_and_edits_share_one_crop_and_flip(dm):
    _, aug, train_set = dm()
    assert aug.sample_transform() is None  # no per-image policy that could act on one image only
    wrapped = aug.train_dataset(train_set)
    assert len(wrapped) == len(train_set)
    crops = set()
    for _ in range(20):
        stack, label, index = wrapped[4]
        assert stack.shape == (3, 3, 32, 32) and stack.dtype == torch.uint8
        assert label == train_set.targets[4] and index == 4
        original = stack[0]
        used = []
        for edit in stack[1:]:
            matches = [k for k in range(PROMPTS) if torch.equal(edit, synthetic_edit(original, k))]
            assert len(matches) == 1, "an edit is not aligned with its original"
            used.append(matches[0])
        assert used[0] != used[1], "the two JSD views must come from different prompts"
        crops.add(original.numpy().tobytes())
    assert len(crops) > 3, "the random crop and flip never varied"


def test_missing_edits_name_the_generate_command(dm):
    """The count and the command that makes them; before any edit is made, how to try the method on a
    few images per class first (a debug run reads any training image's edits)."""
    cfg, aug, train_set = dm(fill=False)
    with pytest.raises(
        MissingEditError, match=r"27 of 27 edits[\s\S]*python generate.py dataset=cifar100"
    ) as first:
        aug.train_dataset(train_set)
    assert "add dataset.samples_per_class=2, say, to both commands" in str(first.value)
    fill_store(cfg, keep=lambda i, k: (i, k) != (3, 1))
    with pytest.raises(MissingEditError, match=r"1 of 27 edits.*first: index \d+, prompt 'snowy'") as one:
        aug.train_dataset(train_set)
    assert "samples_per_class" not in str(one.value)  # (one edit missing: no such advice)


def test_training_without_edits_stops_before_making_a_fractal_bank(make_cfg, tmp_path):
    """Missing edits are named before the fractal bank is generated (minutes on a first run)."""
    cfg = make_cfg(BASE + [f"paths.cache_dir={tmp_path / 'cache'}"])
    with pytest.raises(
        MissingEditError, match=r"edits of cifar100/train are missing: no edit store of these"
    ):
        train(cfg)
    assert not (tmp_path / "cache" / "fractals").exists()
    fill_store(cfg)
    assert train(cfg)["optimizer_steps"] >= 1
    assert any((tmp_path / "cache" / "fractals").iterdir())


def test_arms_without_edits_need_no_store(dm):
    _, aug, train_set = dm(["aug.components=originals_fractal"], loss="ce", fill=False)
    images, labels, indices = first_batch(aug.train_dataset(train_set))
    assert images.shape[1] == 1  # the original alone
    out = aug.apply(images, soft(labels), indices, None)
    assert out.inputs.shape == (9, 3, 32, 32) and not torch.equal(out.inputs, images[:, 0])
    assert not any(isinstance(c, DiffuseMixFigureCallback) for c in aug.callbacks())


# -- views and modes ----------------------------------------------------------------------------


def test_jsd_views_are_clean_then_two_independent_draws(dm):
    _, aug, train_set = dm()
    images, labels, indices = first_batch(aug.train_dataset(train_set))
    out = aug.apply(images, soft(labels), indices, None)
    assert out.num_views == 3 and out.inputs.shape == (27, 3, 32, 32) and out.targets.shape == (9, 100)
    clean, view1, view2 = out.inputs.chunk(3)
    assert torch.equal(clean, images[:, 0])
    assert not torch.allclose(view1, view2)
    draws = set()
    for i in range(9):
        for v, view in ((1, view1), (2, view2)):
            found = explain(view[i], images[i, 0], images[i, v], aug)
            assert found, f"view {v} of sample {i} is not Eq. 3 of its original and edit"
            draws |= found
    assert len(draws) > 3, "masks and fractals are not drawn per sample"


def test_ce_trains_on_the_composed_view(dm):
    _, aug, train_set = dm(loss="ce")
    images, labels, indices = first_batch(aug.train_dataset(train_set))
    assert images.shape[1] == 2  # the original and one edit
    out = aug.apply(images, soft(labels), indices, None)
    assert out.num_views == 1 and out.inputs.shape == (9, 3, 32, 32)
    assert all(explain(out.inputs[i], images[i, 0], images[i, 1], aug) for i in range(9))
    _, both, _ = dm(["aug.ce_include_original=true"], loss="ce")
    both.train_dataset(train_set)
    out = both.apply(images, soft(labels), indices, None)
    assert out.num_views == 2 and torch.equal(out.inputs[:9], images[:, 0])


def assert_arm_view(aug, component, view, originals, edits) -> None:
    """Each image of ``view`` is ``component`` made of its original and edit: nothing else."""
    n = len(view)
    base = {"originals": originals, "edits": edits}.get(component.removesuffix("_fractal"))
    if component == "originals":
        assert torch.equal(view, originals)
    elif component == "edits":
        assert torch.equal(view, edits)
    elif component.startswith("hybrid"):
        templates = half_mask_templates(aug.kinds, 32, 32)
        lam = aug.lam if component.endswith("_fractal") else 0.0
        bank = aug._fractal_bank(32, 32, view.device).float() / 255 if lam else torch.zeros(1, 3, 32, 32)
        for i in range(n):
            hybrids = originals[i] * templates + edits[i] * (1 - templates)
            candidates = ((1 - lam) * hybrids[:, None] + lam * bank[None]).flatten(0, 1)
            assert (candidates - view[i]).abs().amax(dim=(1, 2, 3)).min() < 1e-5
    else:  # originals_fractal, edits_fractal: (1 - λ) X + λ F for a bank fractal F
        bank = aug._fractal_bank(32, 32, view.device).float() / 255
        for i in range(n):
            candidates = (1 - aug.lam) * base[i] + aug.lam * bank
            assert (candidates - view[i]).abs().amax(dim=(1, 2, 3)).min() < 1e-5


@pytest.mark.parametrize("component", COMPONENTS)
def test_each_table7_arm_trains_on_its_parts(dm, component):
    _, aug, train_set = dm([f"aug.components={component}"], loss="ce")
    images, labels, indices = first_batch(aug.train_dataset(train_set))
    view = aug.apply(images, soft(labels), indices, None).inputs
    originals = images[:, 0]
    edits = images[:, 1] if images.shape[1] > 1 else originals
    assert_arm_view(aug, component, view, originals, edits)


@pytest.mark.parametrize("component", COMPONENTS)
def test_arm_only_jsd_views_are_only_what_the_table7_column_names(dm, component):
    """aug.views=arm_only: the three JSD views (CE on the first) are three draws of the arm, with
    three distinct prompts' edits; the clean original is not among them unless the arm is I."""
    _, aug, train_set = dm([f"aug.components={component}", "aug.views=arm_only"])
    images, labels, indices = first_batch(aug.train_dataset(train_set))
    uses_edits = not component.startswith("originals")
    assert images.shape[1] == (4 if uses_edits else 1)
    out = aug.apply(images, soft(labels), indices, None)
    assert out.num_views == 3 and out.inputs.shape == (27, 3, 32, 32)
    originals = images[:, 0]
    for v, view in enumerate(out.inputs.chunk(3)):
        edits = images[:, 1 + v] if uses_edits else originals
        assert_arm_view(aug, component, view, originals, edits)
        if component != "originals":
            assert not torch.equal(view, originals), f"view {v} is the clean original"
    if uses_edits:  # three different prompts per image (the store holds three)
        assert all(len({images[i, 1 + v].sum().item() for v in range(3)}) == 3 for i in range(9))
    # The default reading keeps AugMix's clean original as the CE view.
    _, paper, _ = dm([f"aug.components={component}"], fill=False)
    paper.train_dataset(train_set)
    first = first_batch(paper.train_dataset(train_set))
    assert torch.equal(paper.apply(first[0], soft(first[1]), first[2], None).inputs[:9], first[0][:, 0])


def test_table7_experiment_trains_each_arm_on_its_column_only():
    cfg = compose_config(["experiment=table7", "aug.components=edits"])
    assert cfg.aug.views == "arm_only" and cfg.aug.name == "diffusemix" and cfg.budget == "vanilla_steps"


def test_arm_only_before_crop_gives_three_draws(dm):
    _, aug, train_set = dm(["aug.components=edits", "aug.views=arm_only", "aug.compose=before_crop"])
    train_set.transform = None
    views, _, _ = aug.train_dataset(train_set)[3]
    original = train_set.load_image(3)
    assert views.shape == (3, 3, 32, 32)
    assert {int(v.sum()) for v in views} == {int(synthetic_edit(original, k).sum()) for k in range(3)}


def test_replace_p_swaps_in_the_composed_image_with_probability_p(dm):
    for p, expect in ((0.0, "none"), (1.0, "all"), (0.5, "some")):
        _, aug, train_set = dm(["aug.mode=replace_p", f"aug.replace_prob={p}"], loss="ce")
        images, labels, indices = first_batch(aug.train_dataset(train_set))
        images, labels, indices = images.repeat(8, 1, 1, 1, 1), labels.repeat(8), indices.repeat(8)
        view = aug.apply(images, soft(labels), indices, None).inputs
        same = (view == images[:, 0]).flatten(1).all(1)
        assert {"none": same.all(), "all": not same.any(), "some": 0 < same.sum() < len(same)}[expect], p
    _, aug, train_set = dm(["aug.mode=replace_p"], loss="jsd")
    images, labels, indices = first_batch(aug.train_dataset(train_set))
    out = aug.apply(images, soft(labels), indices, None)
    assert out.num_views == 3 and torch.equal(out.inputs[:9], images[:, 0])


def test_static_append_grows_the_set_by_the_prompts(dm):
    _, aug, train_set = dm(["aug.mode=static_append"], loss="ce")
    wrapped = aug.train_dataset(train_set)
    n = len(train_set)
    assert len(wrapped) == n * (1 + PROMPTS)
    stack, label, index = wrapped[2]
    assert torch.equal(stack[0], stack[1]) and index == 2
    for i, j in ((0, 0), (5, 2), (n - 1, 1)):
        stack, label, index = wrapped[n + i * PROMPTS + j]
        assert label == train_set.targets[i] and index == n + i * PROMPTS + j
        assert torch.equal(stack[1], synthetic_edit(stack[0], j)), (
            "the appended item pairs image i with prompt j"
        )
    images, labels, indices = next(iter(DataLoader(wrapped, batch_size=len(wrapped), shuffle=False)))
    images = images.float() / 255
    first = aug.apply(images, soft(labels), indices, None).inputs
    assert torch.equal(first[:n], images[:n, 0]), "originals are trained on as they are"
    assert not (first[n:] == images[n:, 0]).flatten(1).all(1).any()
    assert torch.equal(aug.apply(images, soft(labels), indices, None).inputs, first), "a fixed set"
    # The set is fixed by aug.static_seed, not by the training seed.
    cfg, _, _ = dm(["aug.mode=static_append"], loss="ce")
    for seed, static_seed, same in ((7, 0, True), (0, 1, False)):
        with open_dict(cfg):
            cfg.aug.static_seed = static_seed
        ctx = AugContext(
            num_classes=100, dataset_name="cifar100", image_size=32, seed=seed, loss="ce", config=cfg
        )
        other = create_aug(cfg.aug, ctx)
        other.train_dataset(train_set)
        assert torch.equal(other.apply(images, soft(labels), indices, None).inputs, first) == same


def test_static_append_has_no_jsd_views(dm):
    with pytest.raises(ConfigError, match="loss=ce"):
        dm(["aug.mode=static_append"], loss="jsd", fill=False)


# -- composition before the training crop (aug.compose=before_crop) -----------------------------

# Rounding the composed image to uint8 moves each pixel by at most half a level.
UINT8_ATOL = 0.5 / 255 + 1e-5


def test_before_crop_composes_whole_images_into_the_views(dm):
    _, aug, train_set = dm(["aug.compose=before_crop"])
    train_set.transform = None  # whole images: the fixture's 32 px originals
    wrapped = aug.train_dataset(train_set)
    draws = set()
    for i in range(6):
        stack, label, index = wrapped[i]
        original = train_set.load_image(i)
        assert stack.shape == (3, 3, 32, 32) and stack.dtype == torch.uint8 and index == i
        assert torch.equal(stack[0], original), "the first JSD view is the clean original"
        o = original.float() / 255
        for view in stack[1:]:
            found = set()
            for k in range(PROMPTS):
                found |= explain(
                    view.float() / 255, o, synthetic_edit(original, k).float() / 255, aug, UINT8_ATOL
                )
            assert found, f"a view of image {i} is not Eq. 3 of its original and one of its edits"
            draws |= found
    assert len(draws) > 3, "masks and fractals are not drawn per image"
    # The device step only lays the composed views out view-major.
    images, labels, indices = first_batch(wrapped)
    out = aug.apply(images, soft(labels), indices, None)
    assert out.num_views == 3 and torch.equal(
        out.inputs, torch.cat([images[:, 0], images[:, 1], images[:, 2]])
    )


def test_before_crop_replace_p_keeps_the_original_with_probability_1_minus_p(dm):
    for p, expect in ((0.0, "none"), (1.0, "all"), (0.5, "some")):
        _, aug, train_set = dm(
            ["aug.mode=replace_p", f"aug.replace_prob={p}", "aug.compose=before_crop"], loss="ce"
        )
        train_set.transform = None
        wrapped = aug.train_dataset(train_set)
        torch.manual_seed(0)
        same = [torch.equal(wrapped[i % 9][0][0], train_set.load_image(i % 9)) for i in range(36)]
        assert {"none": all(same), "all": not any(same), "some": 0 < sum(same) < 36}[expect], p


def left_half(*images):
    """A fixed crop of each image's left half (stands in for a random crop that misses one half)."""
    return tuple(im[..., :, : im.shape[-1] // 2] for im in images)


def test_before_crop_lets_the_crop_miss_the_edit(dm):
    # One mask (original on the left), no fractal: the whole image's left half is the original.
    overrides = ["aug.masks=vertical", "aug.components=hybrid"]
    _, before, train_set = dm(overrides + ["aug.compose=before_crop"], loss="ce")
    train_set.transform = left_half
    stack, _, _ = before.train_dataset(train_set)[3]
    original = train_set.load_image(3)
    assert stack.shape == (1, 3, 32, 16)
    assert torch.equal(stack[0], original[:, :, :16]), (
        "the crop of the composed image shows only the original"
    )
    # after_crop (the default) composes the crop itself: its right half shows the edit.
    _, after, _ = dm(overrides, loss="ce", fill=False)
    images, labels, indices = first_batch(after.train_dataset(train_set))
    view = after.apply(images, soft(labels), indices, None).inputs[3]
    crop = original[:, :, :16].float() / 255
    assert torch.equal(view[:, :, :8], crop[:, :, :8])
    assert torch.allclose(view[:, :, 8:], images[3, 1, :, :, 8:]) and not torch.equal(view, crop)


def test_before_crop_static_append_fixes_each_composed_image(dm):
    _, aug, train_set = dm(["aug.mode=static_append", "aug.compose=before_crop"], loss="ce")
    train_set.transform = None
    wrapped = aug.train_dataset(train_set)
    n = len(train_set)
    assert len(wrapped) == n * (1 + PROMPTS)
    stack, _, _ = wrapped[2]
    assert stack.shape == (1, 3, 32, 32) and torch.equal(stack[0], train_set.load_image(2))
    plan_masks, plan_fractals = aug._plan
    for i, j in ((0, 0), (5, 2), (n - 1, 1)):
        slot = i * PROMPTS + j
        stack, label, index = wrapped[n + slot]
        assert label == train_set.targets[i] and stack.shape == (1, 3, 32, 32)
        original = train_set.load_image(i)
        found = explain(
            stack[0].float() / 255,
            original.float() / 255,
            synthetic_edit(original, j).float() / 255,
            aug,
            UINT8_ATOL,
        )
        assert (int(plan_masks[slot]), int(plan_fractals[slot])) in found, (
            "not the item's fixed mask and fractal"
        )
        assert torch.equal(wrapped[n + slot][0], stack), "the appended set is fixed"


def test_compose_size_composes_official_squares(dm):
    from diffusemix_bench.augment.diffusemix.compose import square

    _, aug, train_set = dm(
        [
            "aug.mode=static_append",
            "aug.compose=before_crop",
            "aug.compose_size=40",
            "aug.composed_size=compose",
        ],
        loss="ce",
    )
    train_set.transform = None
    wrapped = aug.train_dataset(train_set)
    n = len(train_set)
    assert wrapped[1][0].shape == (1, 3, 32, 32), "originals keep their own size"
    plan_masks, plan_fractals = aug._plan
    slot = 4 * PROMPTS + 1
    stack, _, _ = wrapped[n + slot]
    assert stack.shape == (1, 3, 40, 40)
    original = train_set.load_image(4)
    o, e = square(original, 40), square(synthetic_edit(original, 1), 40)
    assert o.shape == (3, 40, 40)
    # The fractal, resized to 40 px, is stored as uint8 for explain(): λ x half a level more.
    atol = UINT8_ATOL + aug.lam * 0.5 / 255
    found = explain(stack[0].float() / 255, o.float() / 255, e.float() / 255, aug, atol)
    assert (int(plan_masks[slot]), int(plan_fractals[slot])) in found
    # Online JSD: the clean view is squared too, so the three views share one size.
    _, online, _ = dm(
        ["aug.compose=before_crop", "aug.compose_size=40", "aug.composed_size=compose"], fill=False
    )
    views, _, _ = online.train_dataset(train_set)[2]
    assert views.shape == (3, 3, 40, 40) and torch.equal(views[0], square(train_set.load_image(2), 40))


def test_official_recipe_at_32_px_trains_on_the_whole_composed_image(dm):
    """experiment=diffusemix_official on CIFAR-size images: the 256 px composition reads the model's
    full-size edit and is brought back to 32 px before the crop, so a training item shows all of it."""
    from diffusemix_bench.augment.diffusemix.compose import resize_to, square

    # The stand-in full-size edit is the inverted square, far from an enlarged stored edit.
    cfg, aug, train_set = dm(
        ["experiment=diffusemix_official", "generator.prompts=[autumn,snowy,sunset]"],
        loss="ce",
        full_edit=lambda image, k, r: 255 - square(image, r),
    )
    assert (aug.composed_size, aug.edit_source, cfg.generator.keep_full_size) == ("original", "full", True)
    train_set.transform = None
    wrapped = aug.train_dataset(train_set)
    n = len(train_set)
    slot = 2 * PROMPTS + 1
    stack, _, _ = wrapped[n + slot]
    assert stack.shape == (1, 3, 32, 32), "the composed item is at the training resolution"
    original = train_set.load_image(2)
    plan_masks, plan_fractals = aug._plan
    composer = wrapped.composer
    mask_id, fractal_id = int(plan_masks[slot]), int(plan_fractals[slot])

    def expected(edit):
        return resize_to(composer.compose(square(original, 256), edit, mask_id, fractal_id), 32, 32)

    assert torch.equal(stack[0], expected(255 - square(original, 256)))
    assert not torch.equal(stack[0], expected(square(synthetic_edit(original, 1), 256)))
    # With the training crop (pad 4 + 32 px crop), each item shows at least 3/4 of each side of the
    # composed image; the official 256 px square itself would show 32 / 256 of a side.
    train_set.transform = train_transform("pad_crop", 32, 32, padding=4, hflip=True)
    assert wrapped[n + slot][0].shape == (1, 3, 32, 32)


def _official_code_inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """An original, an edit (blocky pictures with noise) and a fractal, uint8 3 x 48 x 64, from integer draws."""
    g = torch.Generator().manual_seed(2024)

    def picture():
        low = torch.randint(0, 256, (3, 6, 8), generator=g)
        noise = torch.randint(-12, 13, (3, 48, 64), generator=g)
        return (low.repeat_interleave(8, 1).repeat_interleave(8, 2) + noise).clamp(0, 255).to(torch.uint8)

    original, edit = picture(), picture()
    return original, edit, torch.randint(0, 256, (3, 48, 64), generator=g, dtype=torch.uint8)


# Observed from the official code (khawar-islam/diffuseMix e58418d, augment/utils.py:
# Utils.blend_images_with_resize(Utils.combine_images(original, edit), fractal), random.choice fixed to
# each mask; NumPy 2.4) on _official_code_inputs(): the hash of the uint8 result and the red channel
# across the seam (row 20, columns 20-43 for "horizontal"; column 20, rows 12-35 for "vertical").
OFFICIAL_CODE_OUTPUTS = {
    "left": (
        "1ef08d0181f0fa33",
        [197, 242, 234, 229, 167, 127, 131, 103, 125, 130, 130, 114]
        + [102, 138, 114, 140, 124, 165, 171, 123, 126, 114, 132, 116],
    ),
    "top": (
        "c5e184e705f83332",
        [200, 197, 190, 197, 242, 227, 211, 184, 172, 196, 175, 173]
        + [63, 94, 71, 110, 112, 88, 133, 135, 215, 220, 203, 187],
    ),
}


def test_official_experiment_composes_the_official_codes_bytes(dm):
    """experiment=diffusemix_official (aug.arithmetic=official) gives, for the same original, edit,
    fractal and mask, the bytes of the official code's combine_images + blend_images_with_resize: its
    20-sample seam ramp, the hybrid truncated to uint8, then the fractal blend truncated. The default
    aug.arithmetic=exact (Eq. 3 in floating point, rounded once) differs from it by the documented
    amounts: about 0.4 of a level brighter on average, and a few levels at most, along the seam."""
    import hashlib

    from diffusemix_bench.augment.diffusemix.compose import WholeImageComposer

    _, aug, _ = dm(
        ["experiment=diffusemix_official", "generator.prompts=[autumn,snowy,sunset]"], loss="ce", fill=False
    )
    assert aug.arithmetic == "official" and aug.kinds == ("left", "top") and aug.seam_px == 20
    original, edit, fractal = _official_code_inputs()

    class OnePicture:  # the fractal bank, holding this test's fractal
        def __len__(self):
            return 1

        def get(self, i):
            return fractal

    composer = WholeImageComposer(aug)
    composer.bank = OnePicture()
    aug.arithmetic = "exact"
    exact = WholeImageComposer(aug)
    exact.bank = OnePicture()
    for kind_id, kind in enumerate(aug.kinds):
        digest, seam_values = OFFICIAL_CODE_OUTPUTS[kind]
        out = composer.compose(original, edit, kind_id, 0)
        assert out.dtype == torch.uint8 and out.shape == (3, 48, 64)
        across = out[0, 20, 20:44] if kind == "left" else out[0, 12:36, 20]
        assert across.tolist() == seam_values
        assert hashlib.sha256(out.numpy().tobytes()).hexdigest()[:16] == digest
        # The float stages Figure 4 shows end in the same image.
        _, _, final = composer.parts(original.float() / 255, edit.float() / 255, kind_id, 0)
        assert torch.equal(final.mul(255).round().to(torch.uint8), out)
        diff = exact.compose(original, edit, kind_id, 0).int() - out.int()
        assert 0.2 < diff.float().mean() < 0.6 and 1 <= diff.abs().max() <= 6


def test_official_arithmetic_needs_whole_image_composition(make_cfg):
    cfg = make_cfg(BASE + ["aug.arithmetic=official"])
    ctx = AugContext(num_classes=100, dataset_name="cifar100", image_size=32, seed=0, loss="jsd", config=cfg)
    with pytest.raises(ConfigError, match="aug.arithmetic=official .* aug.compose=before_crop"):
        create_aug(cfg.aug, ctx)


def test_a_seam_over_half_the_mask_side_is_warned_about(caplog):
    """The official 20 px seam at a 32 px crop ramps over most of the image: said in a warning; at
    256 px (the official code's size) nothing is said."""
    cfg = compose_config(["dataset=cifar100", "aug=diffusemix", "aug.seam_px=20"])
    for size, warned in ((32, True), (256, False)):
        caplog.clear()
        ctx = AugContext(
            num_classes=10, dataset_name="cifar100", image_size=size, seed=0, loss="ce", config=cfg
        )
        with caplog.at_level("WARNING"):
            create_aug(cfg.aug, ctx)
        assert ("aug.seam_px=20 ramps over half or more of the 32 px side" in caplog.text) == warned, (
            caplog.text
        )


def test_edits_stored_smaller_than_training_reads_them_are_warned_about(caplog, tmp_path):
    """generator.store_size below dataset.resize (a resizing training transform): each edit is
    enlarged when read, said in a warning; store_size=auto (the default) and a larger size say
    nothing, nor do full-size edits (aug.edit_source=full), which are not the stored ones."""
    full = ["aug.edit_source=full", "generator.keep_full_size=true"]
    said = (
        "stored at a shorter side of 16 px (generator.store_size=16) and training brings them to 40 px "
        "(dataset.resize)"
    )
    for store_size, extra, warned in (
        ("16", [], True),
        ("auto", [], False),
        ("64", [], False),
        ("16", full, False),
    ):
        cfg = compose_config(
            [
                "dataset=flowers102",
                "aug=diffusemix",
                "generator=tiny",
                "dataset.image_size=32",
                "dataset.resize=40",
                f"generator.store_size={store_size}",
                f"generator.edits_dir={tmp_path}",
                *extra,
            ]
        )
        ctx = AugContext(
            num_classes=102, dataset_name="flowers102", image_size=32, seed=0, loss="jsd", config=cfg
        )
        aug = create_aug(cfg.aug, ctx)
        caplog.clear()
        with caplog.at_level("WARNING"):
            aug._warn_small_edits()
        assert (said in caplog.text) == warned, (store_size, extra, caplog.text)


def test_composed_size_auto_keeps_squares_for_resizing_transforms(make_cfg, tmp_path):
    """Where the training transform resizes (resize_crop: CUB, Aircraft, Cars...), composed squares
    stay as the official code writes them; pad_crop datasets get them back at their own size."""
    for dataset, expected in (("cub", "compose"), ("cifar100", "original")):
        cfg = compose_config(
            [
                f"dataset={dataset}",
                "aug=diffusemix",
                "aug.components=edits",
                "aug.compose=before_crop",
                "aug.compose_size=64",
            ]
        )
        ctx = AugContext(num_classes=10, dataset_name=dataset, image_size=32, seed=0, loss="ce", config=cfg)
        assert create_aug(cfg.aug, ctx).composed_size == expected


def test_loss_auto_is_ce_for_the_single_view_static_set():
    from diffusemix_bench.augment.registry import resolve_loss

    assert resolve_loss(compose_config(["aug=diffusemix"])) == "jsd"
    assert resolve_loss(compose_config(["aug=diffusemix", "aug.mode=static_append"])) == "ce"
    assert resolve_loss(compose_config(["aug=diffusemix", "aug.mode=static_append", "loss=jsd"])) == "jsd"
    official = compose_config(["experiment=diffusemix_official"])
    assert resolve_loss(official) == "ce" and official.aug.compose == "before_crop"
    assert official.generator.prompt_template == "raw" and official.aug.masks == "official2"
    assert official.aug.seam_px == 20


def test_official_experiment_follows_the_current_code_and_keeps_the_first_release():
    """Since July 2024 the official code resizes to 256 x 256 (generation and composition) and loads
    InstructPix2Pix in fp16; its first release worked at 512 x 512."""
    current = compose_config(["experiment=diffusemix_official"])
    assert (current.generator.resolution, current.aug.compose_size, current.generator.dtype) == (
        256,
        256,
        "fp16",
    )
    first = compose_config(["experiment=diffusemix_official_first_release"])
    assert (first.generator.resolution, first.aug.compose_size, first.generator.dtype) == (512, 512, "fp16")
    # Fractal pictures squashed once at the composition's size (the first release read them at 512).
    assert (current.fractals.size, current.fractals.fit) == (256, "squash")
    assert (first.fractals.size, first.fractals.fit) == (512, "squash")
    assert first.aug.mode == current.aug.mode == "static_append" and first.loss.name == "ce"
    # The two name different edit stores: their pixels differ.
    from diffusemix_bench.generation.store import settings_hash, store_settings

    def folder(cfg):
        return settings_hash(store_settings(cfg, "cub", "train"))

    assert folder(current) != folder(first)


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ("aug.lam=1.5", "aug.lam"),
        ("aug.mode=sometimes", "aug.mode"),
        ("aug.components=all", "aug.components"),
        ("aug.replace_prob=2", "aug.replace_prob"),
        ("aug.masks=diagonal", "aug.masks"),
        ("aug.seam_px=-3", "aug.seam_px"),
        ("aug.compose=sideways", "aug.compose"),
        ("aug.compose_size=512", "aug.compose=before_crop"),
        ("aug.views=both", "aug.views"),
        ("aug.composed_size=big", "aug.composed_size"),
        ("aug.composed_size=original", "aug.composed_size=original .*needs aug.compose=before_crop"),
        ("aug.replace_prob=0.3", "aug.replace_prob=0.3 .*aug.mode=online does not read it"),
        ("aug.static_seed=5", "aug.static_seed=5 seeds the fixed masks .*aug.mode=online does not read it"),
        ("aug.edit_source=full", "keep_full_size"),
        ("aug.views=arm_only aug.mode=static_append", "aug.views=arm_only"),
    ],
)
def test_bad_settings_name_the_key(dm, override, match):
    with pytest.raises(ConfigError, match=match):
        dm(override.split(), fill=False, loss="ce")


def test_device_draws_are_seeded_per_epoch(dm):
    """A resumed run draws, from its first epoch on, what the uninterrupted run drew there."""
    _, aug, train_set = dm()
    images, labels, indices = first_batch(aug.train_dataset(train_set))

    def epoch_draws(a, epoch):
        a.start_epoch(epoch)
        return a.apply(images, soft(labels), indices, None).inputs

    epoch0, epoch1 = epoch_draws(aug, 0), epoch_draws(aug, 1)
    assert not torch.equal(epoch0, epoch1)
    _, resumed, _ = dm(fill=False)
    resumed.train_dataset(train_set)
    assert torch.equal(epoch_draws(resumed, 1), epoch1)
    # The training loop reports each epoch through the method's callback.
    (callback,) = [c for c in aug.callbacks() if isinstance(c, DiffuseMixEpochCallback)]
    callback.on_train_epoch_start(type("T", (), {"current_epoch": 0})(), None)
    assert torch.equal(aug.apply(images, soft(labels), indices, None).inputs, epoch0)


def test_fractal_bank_moves_to_the_device_once(dm):
    _, aug, train_set = dm()
    images, labels, indices = first_batch(aug.train_dataset(train_set))
    aug.apply(images, soft(labels), indices, None)
    bank = aug._fractals[(32, 32, images.device)]
    aug.apply(images, soft(labels), indices, None)
    assert len(aug._fractals) == 1 and aug._fractals[(32, 32, images.device)] is bank
    assert bank.dtype == torch.uint8 and bank.shape == (6, 3, 32, 32)


def test_schema_and_yaml_agree():
    cfg = compose_config(["aug=diffusemix"])
    assert set(cfg.aug) == set(DiffuseMixConfig.__dataclass_fields__)
    assert cfg.aug.lam == 0.2 and cfg.aug.masks == "paper4" and cfg.aug.seam_px == 0
    assert cfg.aug.mode == "online" and cfg.aug.components == "hybrid_fractal"
    assert cfg.aug.compose == "after_crop"
    assert DiffuseMix.default_loss == "jsd" and DiffuseMix.supports_jsd


# -- end to end ---------------------------------------------------------------------------------


def expected_grid_size(rows: int, cell: int = 128) -> tuple[int, int]:
    return len(COLUMNS) * (cell + PADDING_PX) + PADDING_PX, HEADER_PX + rows * (
        cell + PADDING_PX
    ) + PADDING_PX


@pytest.mark.parametrize(
    ("overrides", "loss", "items"),
    [
        ([], "jsd", 9),
        (["loss=ce", "aug.mode=static_append"], "ce", 9 * (1 + PROMPTS)),
        # Whole-image composition in two data worker processes.
        (["aug.compose=before_crop", "dataset.num_workers=2"], "jsd", 9),
    ],
)
def test_train_one_step(make_cfg, tmp_path, overrides, loss, items):
    cfg = make_cfg(BASE + [f"paths.cache_dir={tmp_path / 'cache'}"] + overrides)
    fill_store(cfg)
    metrics = train(cfg)
    assert metrics["optimizer_steps"] >= 1 and metrics["loss"] == loss
    # metrics.json names the edit store read: its folder (named by the settings hash) and prompts.
    store = metrics["edit_store"]
    assert store["folder"].endswith(store["hash"]) and store["prompts"] == ["autumn", "snowy", "sunset"]
    assert (
        store["settings"]["generator"] == cfg.generator.name
        and store["settings"]["steps"] == cfg.generator.steps
    )
    run = tmp_path / "run"
    with Image.open(run / "figure4.png") as im:
        assert im.size == expected_grid_size(2)
    with open(run / "logs" / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["diffusemix/train_items"] for r in rows if r.get("diffusemix/train_items")] == [str(items)]


def test_figure4_writes_the_grid(make_cfg, tmp_path):
    cfg = make_cfg(BASE + [f"paths.cache_dir={tmp_path / 'cache'}", "aug.figure_images=3"])
    fill_store(cfg)
    path = write_figure4(cfg)
    with Image.open(path) as im:
        assert im.size == expected_grid_size(3)
        pixels = torch.from_numpy(np.array(im.convert("RGB"))).permute(2, 0, 1)
    # Row 0, mask column: the cells hold only black and white (a hard half mask).
    top = HEADER_PX + PADDING_PX
    left = PADDING_PX + 2 * (128 + PADDING_PX)
    mask_cell = pixels[:, top : top + 128, left : left + 128]
    assert set(mask_cell.unique().tolist()) == {0, 255}
    # The figure's config composes (python figure4.py dataset=... aug.figure_images=N).
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from tests.conftest import CONF_DIR

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        fig_cfg = compose("figure4", overrides=["dataset=flowers102", "aug.figure_images=4"])
    assert fig_cfg.aug.name == "diffusemix" and fig_cfg.aug.figure_images == 4
    # Another method is refused with the fix.
    from omegaconf import open_dict

    with open_dict(cfg):
        cfg.aug = make_cfg(["aug=mixup"]).aug
    with pytest.raises(
        ConfigError, match=r"aug=mixup is another method: leave aug out \(its default is aug=diffusemix\)"
    ):
        write_figure4(cfg)


def test_figure4_generates_only_the_edits_it_draws_on_request(make_cfg, tmp_path, caplog, monkeypatch):
    """Without edits, figure4 stops with the generate command, before the fractal bank is built
    (a minute for the paper's bank); with aug.figure_generate=true it makes the edits of the images
    it draws (the tiny generator here), only those, then draws, and says that the tiny generator's
    edits are noise, not the paper's figure."""
    from diffusemix_bench.augment.fractals import FractalBank
    from diffusemix_bench.generation.store import MissingEditError

    built = []
    real = FractalBank.from_config
    monkeypatch.setattr(FractalBank, "from_config", lambda *a, **k: built.append(1) or real(*a, **k))
    base = BASE + [f"paths.cache_dir={tmp_path / 'cache'}", "aug.figure_images=2", "generator=tiny"]
    with pytest.raises(MissingEditError, match=r"python generate.py[\s\S]*add aug.figure_generate=true"):
        write_figure4(make_cfg(base))
    assert not built
    # Asked for more rows than the split has images: it draws them all, and says so.
    more = [b for b in base if not b.startswith("aug.figure_images=")] + ["aug.figure_images=20"]
    with (
        caplog.at_level("WARNING"),
        pytest.raises(MissingEditError, match=r"needs only the edits of the 9 images"),
    ):
        write_figure4(make_cfg(more))
    assert "aug.figure_images=20, but the training split of cifar100 has 9 images: the figure has 9 rows" in (
        caplog.text
    )
    cfg = make_cfg([*base, "aug.figure_generate=true"])
    with caplog.at_level("WARNING"):
        path = write_figure4(cfg)
    assert (
        "generator=tiny: the edit column" in caplog.text
        and "noise rather than an InstructPix2Pix" in caplog.text
    )
    with Image.open(path) as im:
        assert im.size == expected_grid_size(2)
    assert built  # (the final images blend fractals: the bank is built once the edits are there)
    store = EditStore.from_config(cfg, "cifar100", "train")
    made = {i for i in range(64) for pid in store.prompt_ids if store.has(i, pid)}
    assert len(made) == 2  # two images drawn, every prompt of each; nothing else


def test_figure4_of_a_partial_store_draws_the_images_it_has_edits_of(make_cfg, tmp_path, caplog):
    """A store made for a few images first (generator.limit_per_class, to look at them): figure4
    draws among the images with every edit instead of refusing those it drew without; asked for more
    rows than such images, it shows those and says so."""
    cfg = make_cfg(BASE + [f"paths.cache_dir={tmp_path / 'cache'}", "aug.figure_images=2"])
    fill_store(cfg, keep=lambda i, k: i in (2, 5, 7))  # of the split's 9 images
    with caplog.at_level("WARNING"), Image.open(write_figure4(cfg)) as im:
        assert im.size == expected_grid_size(2)
    assert "generator=tiny" not in caplog.text  # (another generator's store: no such note)
    cfg.aug.figure_images = 4
    with caplog.at_level("WARNING"):
        path = write_figure4(cfg)
    with Image.open(path) as im:
        assert im.size == expected_grid_size(3)
    assert "every edit of 3 image(s) alone: the figure shows 3 row(s), not 4" in caplog.text


def test_a_refused_figure4_leaves_no_folder_of_hydras_files_alone(make_cfg, tmp_path):
    """figure4.py refused (its edits missing) after Hydra made its folder: the folder, holding only
    Hydra's files, is removed, as train.py's is."""
    from omegaconf import open_dict

    from diffusemix_bench.cli import run_figure4

    cfg = make_cfg(BASE + [f"paths.cache_dir={tmp_path / 'cache'}", "aug.figure_images=2", "generator=tiny"])
    with open_dict(cfg):
        cfg.task_name = "figure4"
    run = tmp_path / "run"
    assert cfg.paths.output_dir == str(run)
    (run / ".hydra").mkdir(parents=True)
    (run / "figure4.log").write_text("")
    with pytest.raises(SystemExit, match="python generate.py"):
        run_figure4(cfg)
    assert not run.exists()


def test_figure4_follows_the_composition_stage(dm):
    # The fixture's 32 px images are resized to 36 and centre-cropped to 32 for the figure.
    overrides = ["aug.masks=vertical", "aug.components=hybrid"]
    _, after, train_set = dm(overrides, loss="ce")
    _, before, _ = dm(overrides + ["aug.compose=before_crop"], loss="ce", fill=False)
    a = figure4_stages(after, train_set, 3, seed=5)
    b = figure4_stages(before, train_set, 3, seed=5)
    assert all(x.shape == (3, 3, 32, 32) for x in a + b)
    assert torch.allclose(a[0], b[0], atol=1.01 / 255), "the same images, resized and cropped alike"
    # after_crop draws the hard mask on the crop; before_crop draws it on the whole image, and the
    # resize then blends the columns at the seam.
    assert set(a[2].unique().tolist()) == {0.0, 1.0}
    soft_columns = ((b[2] > 0) & (b[2] < 1)).any(dim=(0, 1, 2)).nonzero().flatten().tolist()
    assert soft_columns and all(14 <= c <= 17 for c in soft_columns), soft_columns
    # Away from the seam both are the original (left) and the edit (right).
    assert torch.allclose(a[3][..., :12], b[3][..., :12], atol=1.01 / 255)
    assert torch.allclose(a[3][..., 20:], b[3][..., 20:], atol=1.01 / 255)


def test_figure4_shows_the_edit_training_composes_from(dm):
    """aug.edit_source=full (both official recipes): training composes from the model's full-size
    edit; the figure showed the stored edit (at 32 px, enlarged) in its edit column."""
    from diffusemix_bench.augment.diffusemix.compose import square

    _, aug, train_set = dm(
        ["experiment=diffusemix_official", "generator.prompts=[autumn,snowy,sunset]"],
        loss="ce",
        full_edit=lambda image, k, r: 255 - square(image, r),  # far from the stored (darkened) edit
    )
    assert aug.edit_source == "full"
    train_set.transform = None
    original, edit = figure4_stages(aug, train_set, 2, seed=0)[:2]
    assert (original + edit - 1.0).abs().mean() < 0.02, "the edit column is the full-size (inverted) edit"


def test_generate_with_the_tiny_model_then_train(make_cfg, tmp_path):
    from diffusemix_bench.generation.generate import generate

    cfg = make_cfg(
        BASE + [f"paths.cache_dir={tmp_path / 'cache'}", "generator=tiny", "generator.prompts=[autumn,snowy]"]
    )
    with pytest.raises(MissingEditError, match="python generate.py .*generator=tiny"):
        train(cfg)
    assert generate(cfg)["generated"] == 9 * 2
    metrics = train(cfg)
    assert metrics["optimizer_steps"] >= 1 and metrics["loss"] == "jsd"


def test_a_resume_draws_the_uninterrupted_runs_masks_and_fractals(dm):
    """DiffuseMix's device stream across a checkpoint: resumed from a checkpoint at an epoch's end
    (the last.ckpt of every epoch, the common resume) or from one mid-epoch, the next epoch draws
    what the uninterrupted run drew. The epoch-end resume once went on with the ended epoch's
    stream (a resumed run's losses differed from the uninterrupted run's)."""
    _, aug, train_set = dm()
    images, labels, indices = first_batch(aug.train_dataset(train_set))

    def draw(a):
        return a.apply(images, soft(labels), indices, None).inputs

    aug.start_epoch(0)
    draw(aug)
    mid0 = aug.rng_state()  # a checkpoint after step 1 of epoch 0
    draw(aug)
    end0 = aug.rng_state()  # a checkpoint at epoch 0's end
    aug.start_epoch(1)
    whole = [draw(aug), draw(aug)]

    for state, epochs in ((end0, [1]), (mid0, [0, 1])):
        _, resumed, _ = dm(fill=False)
        resumed.train_dataset(train_set)
        resumed.set_rng_state(state)  # the training module's on_train_start
        for epoch in epochs:  # then each epoch's start
            resumed.start_epoch(epoch)
            if epoch == 0:
                draw(resumed)  # the rest of epoch 0
        assert torch.equal(draw(resumed), whole[0]) and torch.equal(draw(resumed), whole[1])


def test_a_sweep_whose_diffusemix_jobs_lack_their_edits_starts_no_job(tmp_path):
    """train.py --multirun with DiffuseMix jobs and no edits: refused before any job starts (the
    baselines of the sweep would train first, and the DiffuseMix jobs fail), with the generate
    command; once the edits are made the sweep is taken."""
    from diffusemix_bench.generation.generate import generate
    from diffusemix_bench.preflight import check_command_line
    from tests.conftest import CONF_DIR
    from tests.fixtures.datasets import write_fixture_dataset
    from tests.test_generation import compose_generate

    data = write_fixture_dataset("flowers102", tmp_path / "data")["data_dir"]
    common = ["dataset=flowers102", f"paths.data_dir={data}", f"paths.cache_dir={tmp_path / 'cache'}"]
    common += ["generator=tiny", "generator.num_prompts=1"]
    argv = ["--multirun", "aug=none,diffusemix", "seed=0,1", *common]
    with pytest.raises(SystemExit) as refused:
        check_command_line(argv, str(CONF_DIR), "config")
    said = str(refused.value)
    assert said.startswith("error: this sweep's DiffuseMix edits are not all there, so no job was started. ")
    assert (
        "aug=diffusemix: 12 of 12 edits of flowers102/train are missing: no edit store of these settings exists yet"
        in said
        and "generate.py" in said
    )
    # Its folder there without an edit (a generate.py run that stopped before its first): said so.
    import re
    from pathlib import Path

    Path(re.search(r"exists yet \((\S+)\)", said).group(1)).mkdir(parents=True)
    with pytest.raises(SystemExit) as refused:
        check_command_line(argv, str(CONF_DIR), "config")
    assert "the edit store of these settings holds no edit yet (" in str(refused.value)
    assert ": a generate.py run stopped before its first, or is still making it)" in str(refused.value)
    # A method's value refused as well: said first, before the edits are asked for (made first, they
    # would have cost their hours before the sweep stopped on it).
    with pytest.raises(SystemExit) as refused:
        check_command_line(
            ["--multirun", "aug=none,diffusemix,puzzlemix", "seed=0", *common, "dataset.image_size=40"],
            str(CONF_DIR),
            "config",
        )
    assert str(refused.value).startswith(
        "error: the sweep's runs with aug=puzzlemix are refused, so no job was started: aug=puzzlemix splits"
    )
    # A sweep going on in its folder (finished jobs need no edits) is left to its jobs.
    (tmp_path / "sweep").mkdir()
    check_command_line(
        [*argv, "ckpt_path=auto", f"hydra.sweep.dir={tmp_path / 'sweep'}"], str(CONF_DIR), "config"
    )
    generate(compose_generate(common))
    check_command_line(argv, str(CONF_DIR), "config")  # taken
    # Pointed at another edits folder than the one generate.py filled: told where the store is.
    with pytest.raises(SystemExit) as refused:
        check_command_line([*argv, f"generator.edits_dir={tmp_path / 'other'}"], str(CONF_DIR), "config")
    default = tmp_path / "cache" / "edits"
    assert (
        f"no edit store of these settings exists in generator.edits_dir ({tmp_path / 'other'}/flowers102/train/"
        in str(refused.value)
    )
    assert f"but one with edits is in the default edits folder, {default}/flowers102/train/" in str(
        refused.value
    ) and f"(or give generator.edits_dir={default}) to read it" in str(refused.value)
    # Prompt counts share one store: a count beyond the prompts generated is refused too (only the
    # first count was checked, so Figure 5's lower counts trained before the higher ones failed).
    counts = ["--multirun", "aug=diffusemix", "generator.num_prompts=1,2", *common[:-1]]
    with pytest.raises(SystemExit) as refused:
        check_command_line(counts, str(CONF_DIR), "config")
    assert "12 of 24 edits of flowers102/train are missing from the edit store" in str(refused.value)


def test_a_new_run_without_its_edits_leaves_no_run_folder(make_cfg):
    """train.py aug=diffusemix whose edits are not there: refused with the generate command before
    training starts, and the run folder (Hydra's files alone) is removed, as for any setting refused
    at start (it was left with failure.json and config_resolved.yaml)."""
    from pathlib import Path

    from diffusemix_bench.cli import run_train

    cfg = make_cfg(BASE)
    run_dir = Path(cfg.paths.output_dir)
    (run_dir / ".hydra").mkdir(parents=True)  # what Hydra writes before the job
    with pytest.raises(SystemExit) as refused:
        run_train(cfg)
    assert "edits of cifar100/train are missing: no edit store" in str(
        refused.value
    ) and "generate.py" in str(refused.value)
    assert not run_dir.exists()


def test_figure4_cells_are_set_apart_by_grey_lines():
    """A mask's white half is told from the page: the lines between the cells are grey."""
    from diffusemix_bench.augment.diffusemix.figure4 import HEADER_PX, MIN_CELL_PX, PADDING_PX, figure4_grid

    white = torch.ones(2, 3, MIN_CELL_PX, MIN_CELL_PX)
    image = figure4_grid([white] * 6)
    inside = (PADDING_PX + 5, HEADER_PX + PADDING_PX + 5)
    between = (PADDING_PX + MIN_CELL_PX + PADDING_PX // 2, HEADER_PX + PADDING_PX + 5)
    assert image.getpixel(inside) == (255, 255, 255)
    assert image.getpixel(between)[0] < 200, image.getpixel(between)
