"""Batch-mixing baselines (Mixup, CutMix, Manifold Mixup, SaliencyMix, SnapMix, YOCO): defining
properties, equality with timm and torchvision, and one training step each."""

from __future__ import annotations

import numpy as np
import pytest
import timm.data.mixup as timm_mixup
import torch
import torch.nn.functional as F
from scipy import stats
from torchvision.transforms import v2

from diffusemix_bench.augment import AugContext, create_aug
from diffusemix_bench.augment.mixing.batch_mix import (
    Box,
    area_ratio,
    mix_images,
    mix_targets,
    paste_box,
    random_pairing,
    resolve_settings,
    sample_box,
    sample_lambda,
)
from diffusemix_bench.augment.mixing.manifold_mixup import HiddenMixBatch
from diffusemix_bench.augment.mixing.saliency import (
    class_activation_maps,
    feature_maps_and_classifier,
    fine_grained_saliency,
    peak_position,
    spectral_residual_saliency,
)
from diffusemix_bench.augment.mixing.snapmix import semantic_maps, snapmix_label_weights
from diffusemix_bench.errors import ConfigError
from diffusemix_bench.models import create_model
from tests.conftest import compose_config

K = 10


@pytest.fixture(scope="module")
def preact() -> torch.nn.Module:
    """One PreActResNet18 in eval mode, shared (building it is the slow part of these tests)."""
    torch.manual_seed(0)
    return create_model("preactresnet18", K).eval()


def make_aug(name: str, dataset: str = "cifar100", **settings):
    return create_aug({"name": name, **settings}, AugContext(num_classes=K, dataset_name=dataset))


def batch(n: int = 8, size: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Distinct noise images with distinct labels, so every pixel and label weight can be traced."""
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 3, size, size, generator=g)
    labels = torch.randperm(K, generator=g)[:n]
    return images, labels, F.one_hot(labels, K).float()


# ---------------------------------------------------------------- settings


def test_dataset_defaults_resolve_and_explicit_values_win():
    table = {"cifar100": {"alpha": 1.0}, "default": {"alpha": 0.5, "prob": 0.8}}
    assert resolve_settings("m", {"alpha": None, "prob": None}, table, "cifar100") == {
        "alpha": 1.0,
        "prob": 0.8,
    }
    assert resolve_settings("m", {"alpha": None, "prob": None}, table, "cub") == {"alpha": 0.5, "prob": 0.8}
    assert resolve_settings("m", {"alpha": 3.0, "prob": None}, table, "cifar100")["alpha"] == 3.0
    with pytest.raises(ConfigError, match="aug.alpha"):
        resolve_settings("m", {"alpha": None}, {"cub": {"alpha": 1.0}}, "cifar100")
    with pytest.raises(ConfigError, match="unknown key"):
        resolve_settings("m", {"alpha": None}, {"default": {"alpah": 1.0}}, "cifar100")


@pytest.mark.parametrize(
    ("name", "dataset", "alpha", "prob"),
    [
        ("mixup", "cifar100", 1.0, 1.0),
        ("mixup", "tinyimagenet", 0.2, 1.0),
        ("cutmix", "tinyimagenet", 0.2, 1.0),
        ("manifold_mixup", "cifar100", 2.0, 1.0),
        ("manifold_mixup", "tinyimagenet", 0.2, 1.0),
        ("saliencymix", "cifar100", 1.0, 0.5),
        ("snapmix", "cub", 1.0, 0.5),
    ],
)
def test_config_files_give_the_references_strengths(name, dataset, alpha, prob):
    cfg = compose_config([f"aug={name}", f"dataset={dataset}"])
    aug = create_aug(cfg.aug, AugContext(num_classes=K, dataset_name=dataset, protocol=cfg.protocol))
    assert (aug.alpha, aug.prob) == (alpha, prob)


def test_bad_settings_fail_with_the_key():
    with pytest.raises(ConfigError, match="aug.alpha"):
        make_aug("mixup", alpha=0.0, prob=1.0)
    with pytest.raises(ConfigError, match="aug.prob"):
        make_aug("cutmix", alpha=1.0, prob=1.5, box_rule="clovaai")
    with pytest.raises(ConfigError, match="aug.saliency"):
        make_aug("saliencymix", alpha=1.0, prob=1.0, saliency="itti")
    with pytest.raises(ConfigError, match="aug.ops"):
        make_aug("yoco", ops=["rotate"])


# ---------------------------------------------------------------- sampling


@pytest.mark.parametrize("alpha", [0.2, 1.0, 2.0])
def test_lambda_is_beta_alpha_alpha(alpha):
    torch.manual_seed(0)
    draws = [sample_lambda(alpha) for _ in range(3000)]
    assert stats.kstest(draws, stats.beta(alpha, alpha).cdf).pvalue > 0.01
    # The test has power: the same draws are rejected as Beta(alpha, 2 alpha).
    assert stats.kstest(draws, stats.beta(alpha, 2 * alpha).cdf).pvalue < 1e-6


@pytest.mark.parametrize(
    ("lam", "height", "width"), [(0.3, 32, 32), (0.71, 17, 23), (0.05, 224, 224), (0.999, 8, 8)]
)
def test_box_equals_timm_rand_bbox_for_the_same_centre(lam, height, width):
    for seed in range(20):
        np.random.seed(seed)
        yl, yh, xl, xh = timm_mixup.rand_bbox((3, height, width), lam)
        np.random.seed(seed)
        centre = (int(np.random.randint(0, height)), int(np.random.randint(0, width)))
        assert sample_box(lam, height, width, center=centre) == Box(int(yl), int(yh), int(xl), int(xh))


def _mixup_box_edges(c: float, side: int, lam: float) -> tuple[int, int]:
    """One axis of snu-mllab/PuzzleMix ``mixup_box``: a float side, each edge clipped then truncated."""
    half = np.sqrt(1 - lam) * side / 2
    return int(np.clip(c - half, 0.0, side)), int(np.clip(c + half, 0.0, side))


@pytest.mark.parametrize(("lam", "height", "width"), [(0.5, 32, 32), (0.37, 64, 48), (0.93, 17, 23)])
def test_puzzlemix_box_rule_equals_mixup_box_for_the_same_centre(lam, height, width):
    rng = np.random.default_rng(0)
    for _ in range(50):
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        y1, y2 = _mixup_box_edges(cy, height, lam)
        x1, x2 = _mixup_box_edges(cx, width, lam)
        assert sample_box(lam, height, width, center=(cy, cx), rule="puzzlemix") == Box(y1, y2, x1, x2)


def test_clovaai_box_rule_ends_at_half_the_cut():
    # cut = int(31 * sqrt(0.5)) = 21 (odd): clovaai's rand_bbox spans c - 10 .. c + 10, timm's c - 10 .. c + 11.
    assert sample_box(0.5, 31, 31, center=(15, 15), rule="clovaai") == Box(5, 25, 5, 25)
    assert sample_box(0.5, 31, 31, center=(15, 15), rule="timm") == Box(5, 26, 5, 26)


@pytest.mark.parametrize(("rule", "expected"), [("puzzlemix", 0.6614), ("clovaai", 0.6759), ("timm", 0.6759)])
def test_cutmix_mean_label_weight_at_32_px(rule, expected):
    """At 32 px and lam 0.5 the rules differ in how much of a border box is clipped away: the mean
    label weight, computed here exactly from each reference's formula, and drawn by sample_box."""
    if rule == "puzzlemix":  # continuous centre: a fine midpoint grid stands for the integral
        centres = (np.arange(100_000) + 0.5) / 100_000 * 32
        sides = np.array([np.subtract(*_mixup_box_edges(c, 32, 0.5)[::-1]) for c in centres[::50]])
    else:
        cut = int(32 * np.sqrt(0.5))
        far = cut // 2 if rule == "clovaai" else (cut + 1) // 2
        c = np.arange(32)
        sides = np.clip(c + far, 0, 32) - np.clip(c - cut // 2, 0, 32)
    exact = 1 - sides.mean() ** 2 / 32**2
    assert exact == pytest.approx(expected, abs=5e-4)
    torch.manual_seed(0)
    drawn = [area_ratio(sample_box(0.5, 32, 32, rule=rule), 32, 32) for _ in range(4000)]
    assert np.mean(drawn) == pytest.approx(exact, abs=0.004)


@pytest.mark.parametrize(
    ("dataset", "protocol", "rule", "alpha"),
    [
        ("cifar100", None, "puzzlemix", 1.0),
        ("tinyimagenet", None, "puzzlemix", 0.2),
        ("cub", None, "clovaai", 1.0),
        ("cars", "finetune_resnet50", "clovaai", 3.0),
    ],
)
def test_cutmix_follows_the_rule_of_each_recipes_code(dataset, protocol, rule, alpha):
    overrides = ["aug=cutmix", f"dataset={dataset}"] + ([f"protocol={protocol}"] if protocol else [])
    cfg = compose_config(overrides)
    aug = create_aug(cfg.aug, AugContext(num_classes=K, dataset_name=dataset, protocol=cfg.protocol))
    assert (aug.box_rule, aug.alpha) == (rule, alpha)
    assert aug.settings()["box_rule"] == rule


@pytest.mark.parametrize(
    ("dataset", "protocol", "alpha", "prob"),
    [
        ("cub", "fgvc_scratch", 1.0, 0.5),
        ("aircraft", "finetune_resnet50", 5.0, 1.0),
        ("flowers102", "scarcity_resnet18", 1.0, 0.5),
    ],
)
def test_snapmix_strengths_follow_the_protocol(dataset, protocol, alpha, prob):
    cfg = compose_config(["aug=snapmix", f"dataset={dataset}", f"protocol={protocol}"])
    aug = create_aug(cfg.aug, AugContext(num_classes=K, dataset_name=dataset, protocol=cfg.protocol))
    assert (aug.alpha, aug.prob) == (alpha, prob)


def test_guided_pairing_random_is_the_published_cifar_codes_behaviour():
    """pairing=greedy: the partners follow the saliency maps, the same for every seed;
    pairing=random (what the published CIFAR/Tiny code runs): a fresh permutation per batch."""
    images, labels, targets = batch(n=8, size=32)
    partners = {"greedy": set(), "random": set()}
    for pairing in partners:
        aug = make_aug("guided_sr", prob=1.0, pairing=pairing)
        for seed in range(4):
            torch.manual_seed(seed)
            out = aug.apply(images, targets, None, None)
            partners[pairing].add(tuple(_partners(out.targets, labels).tolist()))
    assert len(partners["greedy"]) == 1
    assert len(partners["random"]) > 1


def test_box_distribution_matches_timm():
    torch.manual_seed(0)
    np.random.seed(0)
    ours, theirs = [], []
    for _ in range(1500):
        lam = float(np.random.beta(1.0, 1.0))
        ours.append(area_ratio(sample_box(lam, 32, 32), 32, 32))
        _, corrected = timm_mixup.cutmix_bbox_and_lam((3, 32, 32), lam)
        theirs.append(corrected)
    assert stats.ks_2samp(ours, theirs).pvalue > 0.01


def test_prob_gates_whole_batches():
    images, _, targets = batch()
    torch.manual_seed(0)
    never = make_aug("mixup", alpha=1.0, prob=0.0)
    out = never.apply(images, targets, torch.arange(8), None)
    assert torch.equal(out.inputs, images) and torch.equal(out.targets, targets)
    half = make_aug("cutmix", alpha=1.0, prob=0.5, box_rule="timm")
    mixed = sum(not torch.equal(half.apply(images, targets, None, None).targets, targets) for _ in range(200))
    assert 72 < mixed < 128  # Binomial(200, 1/2) +- 4 sd


# ---------------------------------------------------------------- Mixup and CutMix


def _flip(n: int) -> torch.Tensor:
    return torch.arange(n - 1, -1, -1)


def _roll(n: int) -> torch.Tensor:
    return (torch.arange(n) - 1) % n


def test_mixup_equals_timm(monkeypatch):
    images, labels, targets = batch()
    drawn = {}
    params = timm_mixup.Mixup._params_per_batch

    def record(self):
        drawn["lam"], use_cutmix = params(self)
        return drawn["lam"], use_cutmix

    monkeypatch.setattr(timm_mixup.Mixup, "_params_per_batch", record)
    np.random.seed(3)
    mixer = timm_mixup.Mixup(mixup_alpha=1.0, cutmix_alpha=0.0, label_smoothing=0.0, num_classes=K)
    x, t = mixer(images.clone(), labels)
    perm = _flip(len(images))
    torch.testing.assert_close(mix_images(images, perm, drawn["lam"]), x, rtol=0, atol=1e-6)
    torch.testing.assert_close(mix_targets(targets, perm, drawn["lam"]), t, rtol=0, atol=1e-6)


def test_cutmix_equals_timm(monkeypatch):
    images, labels, targets = batch(size=24)
    drawn = {}
    bbox = timm_mixup.cutmix_bbox_and_lam

    def record(*args, **kwargs):
        drawn["box"], drawn["lam"] = bbox(*args, **kwargs)
        return drawn["box"], drawn["lam"]

    monkeypatch.setattr(timm_mixup, "cutmix_bbox_and_lam", record)
    np.random.seed(5)
    mixer = timm_mixup.Mixup(mixup_alpha=0.0, cutmix_alpha=1.0, label_smoothing=0.0, num_classes=K)
    x, t = mixer(images.clone(), labels)
    box, perm = Box(*(int(v) for v in drawn["box"])), _flip(len(images))
    assert box.area > 0
    assert area_ratio(box, 24, 24) == pytest.approx(drawn["lam"])
    assert torch.equal(paste_box(images, perm, box), x)
    torch.testing.assert_close(mix_targets(targets, perm, area_ratio(box, 24, 24)), t)


def test_mixup_and_cutmix_equal_torchvision(monkeypatch):
    images, labels, targets = batch(size=20)
    perm = _roll(len(images))
    for transform in (v2.MixUp(alpha=1.0, num_classes=K), v2.CutMix(alpha=1.0, num_classes=K)):
        drawn = {}
        make_params = type(transform).make_params

        def record(self, flat_inputs, make_params=make_params, drawn=drawn):
            drawn.update(make_params(self, flat_inputs))
            return drawn

        monkeypatch.setattr(type(transform), "make_params", record)
        torch.manual_seed(1)
        x, t = transform(images, labels)
        if "box" in drawn:
            x1, y1, x2, y2 = drawn["box"]
            box = Box(y1, y2, x1, x2)
            assert box.area > 0
            assert torch.equal(paste_box(images, perm, box), x)
            torch.testing.assert_close(mix_targets(targets, perm, area_ratio(box, 20, 20)), t)
        else:
            torch.testing.assert_close(mix_images(images, perm, drawn["lam"]), x)
            torch.testing.assert_close(mix_targets(targets, perm, drawn["lam"]), t)


def _partners(targets: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Which sample each mixed target took its second label from (labels are distinct; a sample
    paired with itself has no second label)."""
    second = targets.clone()
    second[torch.arange(len(labels)), labels] = 0
    where = torch.full((K,), -1, dtype=torch.long)
    where[labels] = torch.arange(len(labels))
    partner = where[second.argmax(1)]
    return torch.where(second.amax(1) > 0, partner, torch.arange(len(labels)))


def test_mixup_images_and_targets_use_the_same_ratio():
    images, labels, targets = batch()
    torch.manual_seed(2)
    out = make_aug("mixup", alpha=1.0, prob=1.0).apply(images, targets, None, None)
    torch.testing.assert_close(out.targets.sum(1), torch.ones(8))
    partner = _partners(out.targets, labels)
    paired = partner != torch.arange(8)  # random partners: some samples may draw themselves
    lam = float(out.targets[paired.nonzero()[0], labels[paired.nonzero()[0]]])
    assert 0 < lam < 1
    torch.testing.assert_close(out.inputs, lam * images + (1 - lam) * images[partner])
    torch.testing.assert_close(out.targets[paired, labels[paired]], torch.full((int(paired.sum()),), lam))


def test_cutmix_targets_match_the_area_actually_pasted():
    images, labels, targets = batch(size=32)
    for seed in range(10):
        torch.manual_seed(seed)
        out = make_aug("cutmix", alpha=1.0, prob=1.0, box_rule="puzzlemix").apply(images, targets, None, None)
        torch.testing.assert_close(out.targets.sum(1), torch.ones(8))
        if torch.equal(out.targets, targets):
            continue  # an empty box (lam near 1)
        partner = _partners(out.targets, labels)
        paired = partner != torch.arange(8)  # a sample that drew itself is left as it is
        from_partner = (out.inputs == images[partner]).all(1) & (out.inputs != images).any(1)
        kept = (out.inputs == images).all(1)
        assert torch.equal(from_partner | kept, torch.ones_like(kept))
        assert not from_partner[~paired].any()
        first = from_partner[paired][0]
        rows, cols = first.any(1).nonzero(), first.any(0).nonzero()
        assert first[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].all()  # one rectangle ...
        assert torch.equal(from_partner[paired], first.expand_as(from_partner[paired]))  # ... in every image
        fraction = from_partner[paired].float().mean(dim=(1, 2))
        torch.testing.assert_close(out.targets[paired, labels[partner[paired]]], fraction)


# ---------------------------------------------------------------- Manifold Mixup


def test_manifold_mixup_at_the_input_is_input_mixup(preact):
    images, _, targets = batch(size=8)
    aug = make_aug("manifold_mixup", alpha=2.0, prob=1.0, layers=[0])
    mixed = aug.apply(images, targets, None, preact)
    assert isinstance(mixed, HiddenMixBatch) and mixed.split == 0 and 0 < mixed.lam < 1
    assert torch.equal(mixed.inputs, images)  # the mixing happens in the forward pass
    with torch.no_grad():
        expected = preact(mix_images(images, mixed.perm, mixed.lam))
        torch.testing.assert_close(aug.logits(preact, mixed), expected)
    torch.testing.assert_close(mixed.targets, mix_targets(targets, mixed.perm, mixed.lam))


@pytest.mark.parametrize(
    ("layer", "mixed_module", "clean_module"), [(1, "layer2", "layer1"), (2, "layer3", "layer2")]
)
def test_manifold_mixup_mixes_the_chosen_layer(layer, mixed_module, clean_module, preact):
    images, _, targets = batch(size=8)
    seen = {}
    net = preact.backbone
    hooks = [
        getattr(net, clean_module).register_forward_hook(lambda m, i, o: seen.setdefault("clean_out", o)),
        getattr(net, mixed_module).register_forward_pre_hook(lambda m, i: seen.setdefault("mixed_in", i[0])),
    ]
    aug = make_aug("manifold_mixup", alpha=1.0, prob=1.0, layers=[layer])
    mixed = aug.apply(images, targets, None, preact)
    with torch.no_grad():
        logits = aug.logits(preact, mixed)
        clean_hidden = preact.forward_stages(images, 0, layer + 1)
    for hook in hooks:
        hook.remove()
    assert logits.shape == (8, K)
    torch.testing.assert_close(
        seen["clean_out"], clean_hidden
    )  # everything before the layer saw clean images
    torch.testing.assert_close(seen["mixed_in"], mix_images(clean_hidden, mixed.perm, mixed.lam))
    torch.testing.assert_close(mixed.targets.sum(1), torch.ones(8))


def test_manifold_mixup_needs_a_staged_model():
    images, _, targets = batch(size=8)
    with pytest.raises(NotImplementedError, match="model=preactresnet18"):
        make_aug("manifold_mixup", alpha=1.0, prob=1.0).apply(
            images, targets, None, create_model("resnet18", K)
        )


# ---------------------------------------------------------------- saliency and SaliencyMix


def _blob_image(size: int, centre: tuple[int, int], radius: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(size)
    image = 0.4 + 0.03 * torch.rand(1, 3, size, size, generator=g)
    cy, cx = centre
    image[..., cy - radius : cy + radius + 1, cx - radius : cx + radius + 1] = 0.95
    return image


@pytest.mark.parametrize(
    ("size", "centre", "radius"), [(32, (10, 22), 2), (64, (20, 40), 4), (96, (70, 25), 6)]
)
def test_spectral_residual_finds_the_salient_blob(size, centre, radius):
    saliency = spectral_residual_saliency(_blob_image(size, centre, radius))
    assert saliency.shape == (1, size, size) and float(saliency.max()) <= 1.0 and float(saliency.min()) >= 0.0
    y, x = peak_position(saliency[0])
    assert abs(y - centre[0]) <= radius and abs(x - centre[1]) <= radius


def _opencv_vector_image(kind: str, seed: int, size: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if kind == "noise":
        return torch.randint(0, 256, (3, size, size), generator=g, dtype=torch.uint8)
    low = torch.randint(0, 256, (3, size // 8, size // 8), generator=g)
    noise = torch.randint(-8, 9, (3, size, size), generator=g)
    return (low.repeat_interleave(8, 1).repeat_interleave(8, 2) + noise).clamp(0, 255).to(torch.uint8)


# Computed with cv2.saliency.StaticSaliencyFineGrained (OpenCV 4.5.5 and 5.0.0, identical) on the
# image as an 8-bit BGR array (the same picture the RGB tensor holds): its peak (first maximum,
# row-major, as SaliencyMix's np.argmax), a few 8-bit map values and the hash of the 8-bit map.
# Halves of the blurs rounded to even, a float luma or a saturating last cast each change these maps.
OPENCV_FINE_GRAINED = [
    ("noise", 0, 32, (0, 4), {(0, 4): 255, (0, 0): 31, (16, 10): 9, (31, 31): 127}, "c82051701d0b4ebb"),
    ("noise", 6, 64, (25, 20), {(25, 20): 255, (0, 0): 23, (32, 21): 217, (63, 63): 29}, "1c7efe687c7f1576"),
    ("blocky", 1, 32, (1, 26), {(1, 26): 255, (0, 0): 104, (16, 10): 122, (31, 31): 61}, "30ba6c4365b232e3"),
    ("blocky", 0, 64, (11, 13), {(11, 13): 255, (0, 0): 174, (32, 21): 29, (63, 63): 76}, "f80bd463b36d6989"),
]


@pytest.mark.parametrize(("kind", "seed", "size", "peak", "values", "digest"), OPENCV_FINE_GRAINED)
def test_fine_grained_saliency_equals_opencv(kind, seed, size, peak, values, digest):
    import hashlib

    image = _opencv_vector_image(kind, seed, size)
    saliency = fine_grained_saliency(image[None].float() / 255)[0]
    levels = (saliency.double() * 255).round().to(torch.uint8)
    assert peak_position(saliency) == peak
    assert {rc: int(levels[rc]) for rc in values} == values
    assert hashlib.sha256(levels.numpy().tobytes()).hexdigest()[:16] == digest


def test_fine_grained_saliency_finds_a_blob():
    # A bright blob stands out: its centre-surround contrast is far above the background's.
    saliency = fine_grained_saliency(_blob_image(64, (20, 40), 4))[0]
    assert float(saliency[16:25, 36:45].mean()) > 3 * float(saliency[40:, :20].mean())


@pytest.mark.parametrize("detector", ["spectral_residual", "fine_grained"])
def test_saliencymix_box_is_centred_on_the_partners_saliency_peak(detector):
    images, labels, targets = batch(size=48)
    images[:, :, 30:37, 8:15] = 1.0  # a salient blob in every image, so each partner has one
    aug = make_aug("saliencymix", alpha=1.0, prob=1.0, saliency=detector)
    torch.manual_seed(6)
    out = aug.apply(images, targets, None, None)
    torch.manual_seed(6)
    lam, perm = sample_lambda(1.0), random_pairing(8, "cpu")
    peak = peak_position(aug.detector(images[perm[:1]])[0])
    box = sample_box(lam, 48, 48, center=peak, rule="clovaai")
    assert box.area > 0
    if box.y1 > 0 and box.y2 < 48 and box.x1 > 0 and box.x2 < 48:  # not clipped: centred on the peak
        assert ((box.y1 + box.y2) // 2, (box.x1 + box.x2) // 2) == peak
    assert torch.equal(out.inputs, paste_box(images, perm, box))
    torch.testing.assert_close(out.targets, mix_targets(targets, perm, area_ratio(box, 48, 48)))
    torch.testing.assert_close(out.targets.sum(1), torch.ones(8))


# ---------------------------------------------------------------- CAMs and SnapMix


@pytest.mark.parametrize("name", ["preactresnet18", "resnet18", "timm"])
def test_feature_maps_and_classifier_rebuild_the_logits(name):
    options = {"name": "resnet10t"} if name == "timm" else {}
    model = create_model(name, K, **options).eval()
    images = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        features, classifier = feature_maps_and_classifier(model, images)
        torch.testing.assert_close(classifier(features.mean(dim=(2, 3))), model(images), rtol=1e-4, atol=1e-4)


def test_class_activation_maps_follow_snapmix_get_spm():
    model = create_model("resnet18", K).eval()
    images, labels = torch.rand(3, 3, 16, 16), torch.tensor([1, 4, 7])
    with torch.no_grad():
        features, fc = feature_maps_and_classifier(model, images)
        # The reference: every class's map by a 1x1 convolution, then each image's own class.
        every_class = F.conv2d(F.relu(features), fc.weight[:, :, None, None], bias=fc.bias)
        own = every_class[torch.arange(3), labels][:, None]
        expected = F.interpolate(own, size=(16, 16), mode="bilinear", align_corners=False)[:, 0]
    torch.testing.assert_close(class_activation_maps(model, images, labels), expected)


def test_models_without_cams_are_refused():
    images, labels = torch.rand(2, 3, 32, 32), torch.tensor([0, 1])
    convnext = create_model("timm", K, name="convnext_atto").eval()  # LayerNorm after the pooling
    with pytest.raises(NotImplementedError, match="pool \\+ linear"):
        class_activation_maps(convnext, images, labels)
    with pytest.raises(NotImplementedError, match="ImageClassifier"):
        class_activation_maps(torch.nn.Conv2d(3, K, 1), images, labels)
    # A convolution between the pooling and the classifier (MobileNetV3's conv_head): named, not
    # a shape error from applying the classifier to the feature map's channels.
    mobilenet = create_model("timm", K, name="mobilenetv3_small_050").eval()
    with pytest.raises(
        NotImplementedError, match="has layers between its 288-channel feature map and its classifier"
    ):
        class_activation_maps(mobilenet, images, labels)


def test_snapmix_label_weights_are_the_cam_mass_removed_and_added():
    cams = torch.zeros(2, 8, 8)
    cams[0, :, 4:] = 2.0  # image 0: semantics spread over its right half (32 pixels)
    cams[1, :2, :2] = 3.0  # image 1: all semantics in its top-left 2x2 corner
    maps = semantic_maps(cams)
    torch.testing.assert_close(maps.sum(dim=(1, 2)), torch.ones(2))
    perm = torch.tensor([1, 0])
    box, source = Box(0, 4, 2, 6), Box(0, 4, 0, 6)
    rho_a, rho_b = snapmix_label_weights(maps, perm, box, source)
    # The box holds 8 of image 0's 32 semantic pixels and none of image 1's; the source box holds
    # all of image 1's semantics and 8 of image 0's 32.
    torch.testing.assert_close(rho_a, torch.tensor([1 - 8 / 32, 1.0]))
    torch.testing.assert_close(rho_b, torch.tensor([1.0, 8 / 32]))
    # A constant CAM has no semantics: the weights fall back to the areas, as in the reference.
    flat = semantic_maps(torch.ones(2, 8, 8))
    rho_a, rho_b = snapmix_label_weights(flat, perm, box, source)
    torch.testing.assert_close(rho_a, torch.full((2,), 1 - 16 / 64))
    torch.testing.assert_close(rho_b, torch.full((2,), 16 / 64))


def test_snapmix_pastes_the_resized_source_box_and_weights_by_cam(preact):
    model = preact
    images, labels, targets = batch(size=16)
    torch.manual_seed(11)
    out = make_aug("snapmix", alpha=5.0, prob=1.0).apply(images, targets, None, model)
    torch.manual_seed(11)
    box = sample_box(sample_lambda(5.0), 16, 16, rule="clovaai")
    source = sample_box(sample_lambda(5.0), 16, 16, rule="clovaai")
    perm = random_pairing(8, "cpu")
    assert box.area > 0 and source.area > 0
    patch = images[perm][..., source.y1 : source.y2, source.x1 : source.x2]
    resized = F.interpolate(patch, size=box.size, mode="bilinear", align_corners=True)
    torch.testing.assert_close(out.inputs[..., box.y1 : box.y2, box.x1 : box.x2], resized)
    outside = torch.ones(16, 16, dtype=torch.bool)
    outside[box.y1 : box.y2, box.x1 : box.x2] = False
    assert torch.equal(out.inputs[..., outside], images[..., outside])
    maps = semantic_maps(class_activation_maps(model, images, labels))
    rho_a = 1 - maps[:, box.y1 : box.y2, box.x1 : box.x2].sum(dim=(1, 2))
    rho_b = maps[perm][:, source.y1 : source.y2, source.x1 : source.x2].sum(dim=(1, 2))
    expected = rho_a[:, None] * targets + rho_b[:, None] * targets[perm]  # labels are distinct
    torch.testing.assert_close(out.targets, expected, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(out.targets.sum(1), torch.ones(8))  # CAM weights, not areas


# ---------------------------------------------------------------- YOCO


def _halves(x: torch.Tensor, across_width: bool) -> tuple[torch.Tensor, torch.Tensor]:
    mid = x.shape[-1 if across_width else -2] // 2
    return (x[..., :mid], x[..., mid:]) if across_width else (x[..., :mid, :], x[..., mid:, :])


def _yoco_flips(out: torch.Tensor, images: torch.Tensor) -> list[tuple[bool, bool, bool]]:
    """For each image, (cut across the width, first half flipped, second half flipped) that explains ``out``."""
    found = []
    for o, x in zip(out, images):
        explanations = [
            (across, f1, f2)
            for across in (True, False)
            for f1 in (False, True)
            for f2 in (False, True)
            if all(
                torch.equal(oh, xh.flip(-1) if flipped else xh)
                for oh, xh, flipped in zip(_halves(o, across), _halves(x, across), (f1, f2))
            )
        ]
        assert explanations, "an output image is not two independently flipped halves of its input"
        found.append(explanations[0])
    return found


def test_yoco_flips_each_half_on_its_own():
    images, _, targets = batch(n=64, size=10)
    torch.manual_seed(7)
    out = make_aug("yoco").apply(images, targets, None, None)
    assert torch.equal(out.targets, targets)  # label preserving
    flips = _yoco_flips(out.inputs, images)
    assert {across for across, _, _ in flips} == {True, False}
    assert any(f1 != f2 for _, f1, f2 in flips)  # one half flipped, the other not
    torch.manual_seed(7)
    batch_level = make_aug("yoco", per_image=False).apply(images, targets, None, None)
    assert len(set(_yoco_flips(batch_level.inputs, images))) == 1


def test_yoco_mixup_mixes_each_half_with_its_own_ratio():
    images, labels, targets = batch(size=12)
    torch.manual_seed(8)
    out = make_aug("yoco", ops=["mixup"], per_image=False).apply(images, targets, None, None)
    torch.testing.assert_close(out.targets.sum(1), torch.ones(8))
    partner = _partners(out.targets, labels)
    i = int((partner != torch.arange(8)).nonzero()[0])  # a sample mixed with another one
    fits = []
    for across in (True, False):
        pieces = list(
            zip(_halves(out.inputs, across), _halves(images, across), _halves(images[partner], across))
        )
        lams = [float(((o[i] - a[i]) / (b[i] - a[i])).median()) for o, a, b in pieces]
        lams = [1 - lam for lam in lams]  # the weight of the image itself
        if all(torch.allclose(o, lam * a + (1 - lam) * b, atol=1e-5) for lam, (o, a, b) in zip(lams, pieces)):
            fits.append(lams)
    assert len(fits) == 1  # one cut, two ratios
    lam1, lam2 = fits[0]
    assert abs(lam1 - lam2) > 1e-3
    torch.testing.assert_close(out.targets[i, labels[i]], torch.tensor((lam1 + lam2) / 2), atol=1e-4, rtol=0)


# One training step of every method runs in tests/test_train.py (test_every_option_trains_one_step).


def test_snapmix_refuses_a_model_without_class_activation_maps_before_training():
    """A vision transformer has no feature map for CAMs: aug=snapmix says so when the model is
    built (it stopped at the first step with a traceback); a CNN passes, its mode and statistics
    untouched."""
    from diffusemix_bench.augment import AugContext, create_aug
    from diffusemix_bench.errors import ConfigError
    from diffusemix_bench.training.classifier import build_model
    from tests.conftest import compose_config

    base = ["dataset=cifar100", "aug=snapmix", "dataset.image_size=32"]
    vit = compose_config(
        [*base, "model=timm", "model.name=vit_tiny_patch16_224", "+model.kwargs.img_size=32"]
    )
    aug = create_aug(vit.aug, AugContext(num_classes=100, dataset_name="cifar100", image_size=32, seed=0))
    with pytest.raises(ConfigError, match=r"aug=snapmix: class activation maps need"):
        aug.check_model(build_model(vit, 100), 32)
    cnn = build_model(compose_config([*base, "model=preactresnet18"]), 100)
    before = {k: v.clone() for k, v in cnn.state_dict().items()}
    aug.check_model(cnn, 32)
    assert cnn.training and all(torch.equal(v, before[k]) for k, v in cnn.state_dict().items())
