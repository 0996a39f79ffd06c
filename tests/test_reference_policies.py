"""AugMix, PixMix and IPMix and their image operations pinned to numbers observed from the authors' code.

The reference functions (google-research/augmix ``cifar.py:aug``, ``augmentations.py``;
andyzoujm/pixmix ``cifar.py:pixmix``, ``pixmix_utils.py``; hzlsaber/IPMix ``cifar.py:ipmix``,
``IPMix_utils.py``) were run on the fixed images below with every random draw (``np.random.*``,
``random.*``, ``torch.rand``) replaced by a scripted value, and ``ToTensor()`` as their preprocess
(no normalisation, so their output times 255 is in grey levels). Here the project's policies run
with the same draws, scripted through :class:`ScriptedDraws`, and are compared with the numbers
the references produced. The draws correspond as follows (project <-> reference):

* ``torch.rand() = u`` for a level  <->  ``np.random.uniform(0.1, severity) = 0.1 + (severity - 0.1) u``;
* ``torch.rand() < 0.5`` flips a sign  <->  ``np.random.uniform() > 0.5`` (``random()`` for translate);
  scripted as 0.25 / 0.75 in the project and 0.75 / 0.25 in the reference;
* ``torch.randint(len(ops))``  <->  ``np.random.choice(ops)``; the AugMix chain depth
  ``torch.randint(1, 4)``  <->  ``np.random.randint(1, 4)``;
* ``mixing_weights``  <->  ``np.random.dirichlet`` and ``np.random.beta`` (float32 values);
* PixMix ``sample_ab`` = (a, b)  <->  ``get_ab``: b >= 0 is its first branch
  (``random() = 0.25``, ``beta`` draws a, b), b < 0 its second (``random() = 0.75``, ``beta`` draws
  a - 1, -b);
* PixMix "augment first" / "augmented partner" ``torch.rand() < 0.5``  <->  ``np.random.random() < 0.5``;
  the mixing op index  <->  ``np.random.choice(mixings)``;
* IPMix patch-level chain ``torch.rand() < 0.5``  <->  ``random.choice(['IMG', 'P']) == 'P'``; patch
  size and mixing indices  <->  ``random.choice``; corner  <->  ``random.randint``; square patch
  ``torch.rand() < 0.5``  <->  ``random.random() > 0.5``; rectangle sides  <->  ``random.randint(2, size)``;
  random pixel/element masks are the same ``torch.rand`` tensors in both (the project's extra
  ``augmented_partner_prob`` draw, 0.5 here, has no reference counterpart on CIFAR).

Reference snapshots: google-research/augmix 9b9824c, andyzoujm/pixmix f867e87, hzlsaber/IPMix 050bcb6.
Each operation gives the reference's bytes exactly; the project quantises each mixed output once to
uint8 (rounding), where the references keep floats, so a mixed image is within 0.5 grey levels of
each reference value.
"""

from __future__ import annotations

import pytest
import torch

from diffusemix_bench.augment.policies import augmix, ipmix, ops, pixmix
from diffusemix_bench.augment.policies.augmix import AugMixPolicy
from diffusemix_bench.augment.policies.ipmix import IPMixPolicy
from diffusemix_bench.augment.policies.pixmix import PixMixPolicy
from diffusemix_bench.training.losses import TrainLoss, smooth_targets

SEVERITY = 3
# Grey-level slack of a pinned float against the project's rounded uint8 (0.5) and the 3 decimals kept.
ROUNDING = 0.5 + 2e-3


def smooth_image(seed: int) -> torch.Tensor:
    """uint8 3 x 32 x 32: a seeded 8 x 8 grid upsampled x4 bilinearly in float64 (exact), rounded."""
    g = torch.Generator().manual_seed(seed)
    small = torch.randint(0, 256, (1, 3, 8, 8), generator=g).double()
    big = torch.nn.functional.interpolate(small, scale_factor=4, mode="bilinear", align_corners=False)
    return big[0].round().to(torch.uint8)


IMAGE_SEED, PICTURE_SEED = 11, 12


def mask(seed: int, shape: tuple[int, ...]) -> torch.Tensor:
    """The uniform tensor behind an IPMix random pixel/element mask (the same in both runs)."""
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


class ScriptedDraws:
    """Replaces the project's random draws by one ordered script: ``torch.rand(())`` takes a float,
    a larger ``torch.rand`` a tensor, ``torch.randint`` an int (range-checked), and the AugMix/IPMix
    ``mixing_weights`` and PixMix ``sample_ab`` a tuple. Every entry must be used, in order."""

    def __init__(self, script: list) -> None:
        self.script = list(script)

    def _pop(self, kind: type | tuple[type, ...]):
        assert self.script, "the policy drew more than the script holds"
        item = self.script.pop(0)
        assert isinstance(item, kind), f"expected a {kind} draw, the script has {item!r}"
        return item

    def rand(self, *size, **kwargs) -> torch.Tensor:
        if size in ((), ((),)):
            return torch.tensor(self._pop(float))
        return self._pop(torch.Tensor)

    def randint(self, *args, **kwargs) -> torch.Tensor:
        *bounds, _shape = args
        low, high = (0, bounds[0]) if len(bounds) == 1 else bounds
        value = self._pop(int)
        assert low <= value < high, (value, low, high)
        return torch.tensor(value)

    def weights(self, width: int, alpha: float) -> tuple[torch.Tensor, float]:
        ws, m = self._pop(tuple)
        assert len(ws) == width
        return torch.tensor(ws, dtype=torch.float32), m

    def ab(self, beta: float) -> tuple[float, float]:
        return self._pop(tuple)


@pytest.fixture
def scripted(monkeypatch):
    """``scripted(script, fn, *args)``: ``fn(*args)`` with the project's draws taken from ``script``."""

    def run(script: list, fn, *args):
        draws = ScriptedDraws(script)
        with monkeypatch.context() as m:
            m.setattr(torch, "rand", draws.rand)
            m.setattr(torch, "randint", draws.randint)
            m.setattr(augmix, "mixing_weights", draws.weights)
            m.setattr(ipmix, "mixing_weights", draws.weights)
            m.setattr(pixmix, "sample_ab", draws.ab)
            out = fn(*args)
        assert not draws.script, f"scripted draws left unused: {draws.script}"
        return out

    return run


def block_means(image: torch.Tensor) -> torch.Tensor:
    """(3, 4, 4): the mean grey level of each 8 x 8 block of a 3 x 32 x 32 image."""
    return image.double().reshape(3, 4, 8, 4, 8).mean((2, 4))


def assert_near_reference(
    out: torch.Tensor, blocks: list, pixels: list, pixel_tol: float, block_tol: float, where=None
) -> None:
    assert out.shape == (3, 32, 32) and out.dtype == torch.uint8
    for (c, y, x), value in pixels:
        if where is None or where[c, y, x]:
            assert abs(float(out[c, y, x]) - value) <= pixel_tol, ((c, y, x), int(out[c, y, x]), value)
    diff = (block_means(out) - torch.tensor(blocks, dtype=torch.float64)).abs()
    if where is not None:
        diff = diff[block_means(where.to(torch.uint8)) == 1]
    assert diff.max() <= block_tol, diff.max()


def test_inputs_are_the_images_the_references_saw():
    """Pins the fixed image, mixing picture and mask draws given to the reference runs."""
    assert smooth_image(IMAGE_SEED).long().sum((1, 2)).tolist() == [131757, 125435, 143403]
    assert smooth_image(PICTURE_SEED).long().sum((1, 2)).tolist() == [142063, 147419, 135898]
    assert int((mask(1, (1, 7, 5)) < 0.4375).sum()) == 13
    assert int((mask(2, (3, 30, 13)) < 0.625).sum()) == 737
    assert int((mask(3, (1, 8, 8)) < 0.5).sum()) == 40


# ---------------------------------------------------------------------------------------------
# The individual operations. tests/test_policies.py::test_ops_equal_the_reference_pil_operations_byte_for_byte
# recomputes the PIL calls inside the test at given strengths; these pins come from the reference
# modules' own functions (google-research/augmix 9b9824c augmentations.py; mirror and invert from
# hzlsaber/IPMix 050bcb6 IPMix_utils.py), level and sign drawn as scripted, so they also cover the
# level -> strength mapping. Interior = [4:28, 4:28].

OP_PIXELS = [
    (0, 8, 8),
    (1, 16, 21),
    (2, 23, 12),
    (0, 13, 26),
    (1, 6, 11),
    (2, 19, 25),
    (0, 26, 17),
    (1, 10, 5),
]
# (op, u = the level draw (None: no level), negative sign, reference interior channel sums,
#  reference values at OP_PIXELS). Levels at severity 3: u = 0.5 -> 1.55, u = 0.9375 -> 2.81875.
# From google-research/augmix 9b9824c augmentations.py:<op> (hzlsaber/IPMix 050bcb6 IPMix_utils.py
# for mirror and invert) on smooth_image(11).
OP_PINS = [
    ("autocontrast", None, False, [63740, 72135, 84071], [126, 183, 130, 94, 159, 190, 202, 155]),
    ("equalize", None, False, [63781, 72292, 76964], [135, 217, 96, 85, 185, 206, 235, 178]),
    ("posterize", 0.5, False, [64192, 66000, 78656], [128, 160, 128, 96, 144, 176, 192, 144]),
    ("posterize", 0.9375, True, [59392, 61408, 74080], [128, 160, 128, 96, 128, 160, 192, 128]),
    ("rotate", 0.5, False, [68603, 69831, 82807], [134, 179, 137, 114, 132, 164, 169, 150]),
    ("rotate", 0.9375, True, [67831, 69260, 82097], [112, 149, 125, 113, 171, 191, 205, 149]),
    ("solarize", 0.5, False, [65596, 69158, 80619], [132, 170, 130, 104, 150, 182, 199, 147]),
    ("solarize", 0.9375, True, [59243, 64023, 69024], [132, 170, 130, 104, 150, 182, 56, 147]),
    ("shear_x", 0.5, False, [68373, 69469, 82019], [144, 173, 125, 112, 140, 171, 206, 152]),
    ("shear_x", 0.9375, True, [68349, 70230, 82866], [109, 141, 139, 93, 167, 166, 115, 115]),
    ("shear_y", 0.5, False, [68966, 69867, 82550], [140, 197, 121, 123, 143, 156, 165, 152]),
    ("shear_y", 0.9375, True, [67035, 71130, 82295], [116, 120, 144, 126, 160, 184, 199, 146]),
    ("translate_x", 0.5, False, [69137, 69591, 82277], [163, 174, 125, 117, 118, 170, 210, 158]),
    ("translate_x", 0.9375, True, [69064, 69360, 82490], [68, 109, 144, 83, 201, 154, 87, 37]),
    ("translate_y", 0.5, False, [69608, 70057, 82924], [154, 198, 116, 116, 138, 160, 158, 169]),
    ("translate_y", 0.9375, True, [67161, 72654, 83429], [83, 112, 149, 134, 181, 147, 169, 179]),
    ("color", 0.5, False, [69777, 70542, 75304], [146, 156, 82, 115, 137, 149, 182, 132]),
    ("color", 0.9375, True, [69148, 70337, 78008], [141, 161, 100, 111, 142, 161, 188, 137]),
    ("contrast", 0.5, False, [70677, 71439, 76207], [128, 142, 127, 117, 135, 147, 153, 133]),
    ("contrast", 0.9375, True, [69708, 70900, 78556], [129, 152, 128, 112, 140, 160, 170, 138]),
    ("brightness", 0.5, False, [25616, 26366, 31135], [50, 64, 49, 39, 56, 68, 75, 55]),
    ("brightness", 0.9375, True, [41214, 42408, 50071], [80, 103, 78, 63, 91, 110, 120, 89]),
    ("sharpness", 0.5, False, [68285, 70064, 82662], [132, 167, 130, 107, 150, 178, 191, 146]),
    ("sharpness", 0.9375, True, [68215, 70069, 82697], [132, 168, 130, 105, 150, 180, 194, 146]),
    ("mirror", None, False, [68330, 70294, 82907], [92, 142, 172, 44, 108, 220, 87, 38]),
    ("invert", None, False, [78550, 76586, 63973], [123, 85, 125, 151, 105, 73, 56, 108]),
]


@pytest.mark.parametrize(
    ("name", "u", "negative", "sums", "pixels"), OP_PINS, ids=[f"{p[0]}-{p[1]}" for p in OP_PINS]
)
def test_op_matches_the_reference_module_at_a_scripted_level(scripted, name, u, negative, sums, pixels):
    """Pins each AugMix-family operation's output (interior channel sums and eight pixels) at one
    level and sign, exactly as the reference module's op produced it."""
    op = {o.name: o for o in ops.AUGMIX_ALL_OPS + ops.IPMIX_OPS}[name]
    script = []
    if op.magnitude is not None:
        script.append(u)
        if op.signed:
            script.append(0.25 if negative else 0.75)
    out = scripted(script, ops.apply_op, smooth_image(IMAGE_SEED), op, SEVERITY)
    assert out[:, 4:28, 4:28].long().sum((1, 2)).tolist() == sums
    assert [int(out[c, y, x]) for c, y, x in OP_PIXELS] == pixels


# ---------------------------------------------------------------------------------------------
# AugMix: google-research/augmix 9b9824c cifar.py:aug (mixture_width 3, mixture_depth -1,
# aug_severity 3) on smooth_image(11), as float (x 255), vs AugMixPolicy(3, width 3, depth -1).

# Weights (0.5, 0.3125, 0.1875), m = 0.625. Chain 1, depth 2: posterize (u 0.9375: 3 bits), solarize
# (u 0.5: threshold 217). Chain 2, depth 1: translate_x (u 0.75, negative: -2 px). Chain 3, depth 3:
# equalize, solarize (u 0.25: 235), translate_y (u 0.5, positive: 1 px). Op indices into
# ops.AUGMIX_OPS (= the reference's augmentations list).
AUGMIX_EXACT_SCRIPT = [
    ([0.5, 0.3125, 0.1875], 0.625),
    2, 2, 0.9375, 4, 0.5,
    1, 7, 0.75, 0.25,
    3, 1, 4, 0.25, 8, 0.5, 0.75,
]  # fmt: skip
AUGMIX_EXACT_BLOCKS = [
    [[129.524, 75.506, 100.505, 113.836], [89.132, 158.285, 117.31, 128.316],
     [126.0, 72.438, 122.834, 137.145], [125.854, 116.456, 138.338, 129.779]],
    [[135.265, 153.681, 104.024, 127.483], [86.939, 108.861, 120.227, 101.093],
     [75.136, 104.123, 140.977, 93.517], [129.281, 94.241, 114.954, 129.031]],
    [[129.505, 156.347, 131.504, 144.705], [108.546, 149.68, 90.073, 102.901],
     [121.378, 151.808, 138.399, 112.738], [121.501, 139.113, 170.722, 85.679]],
]  # fmt: skip
AUGMIX_EXACT_PIXELS = [
    ((0, 0, 0), 118.0), ((1, 5, 20), 83.711), ((2, 16, 16), 123.102), ((0, 31, 31), 118.0),
    ((1, 25, 7), 183.141), ((2, 10, 28), 152.891), ((0, 12, 14), 163.32), ((1, 2, 28), 175.094),
]  # fmt: skip

# all_ops. Weights (0.375, 0.125, 0.5), m = 0.5. Chain 1, depth 2: color (u 0.875), brightness
# (u 0.25). Chain 2, depth 1: contrast (u 0.625). Chain 3, depth 2: sharpness (u 0.9375), posterize
# (u 0.125: 4 bits). Op indices into ops.AUGMIX_ALL_OPS (= augmentations_all).
AUGMIX_ALL_OPS_SCRIPT = [
    ([0.375, 0.125, 0.5], 0.5),
    2, 9, 0.875, 11, 0.25,
    1, 10, 0.625,
    2, 12, 0.9375, 2, 0.125,
]  # fmt: skip
AUGMIX_ALL_OPS_BLOCKS = [
    [[118.426, 70.981, 93.385, 107.313], [84.844, 149.878, 100.443, 113.407],
     [119.274, 70.074, 109.214, 123.607], [117.725, 105.579, 131.105, 118.643]],
    [[124.325, 137.322, 91.351, 116.532], [87.601, 94.563, 105.375, 88.011],
     [73.24, 93.591, 123.425, 85.439], [133.771, 81.554, 103.146, 113.896]],
    [[129.394, 132.303, 117.961, 125.115], [104.15, 129.537, 82.24, 101.81],
     [118.834, 129.245, 122.406, 98.917], [125.672, 125.806, 155.373, 80.731]],
]  # fmt: skip
AUGMIX_ALL_OPS_PIXELS = [
    ((0, 0, 0), 128.188), ((1, 5, 20), 79.0), ((2, 16, 16), 113.25), ((0, 31, 31), 113.125),
    ((1, 25, 7), 140.875), ((2, 10, 28), 143.062), ((0, 12, 14), 156.312), ((1, 2, 28), 137.813),
]  # fmt: skip


def test_augmix_matches_the_reference_aug_on_exact_operations(scripted):
    """Pins AugMix (Dirichlet/Beta mixing of three chains of random depth, posterize, solarize,
    equalize, translate) to the reference's float output: every pixel within rounding."""
    policy = AugMixPolicy(SEVERITY, 3, -1, 1.0, ops.AUGMIX_OPS)
    out = scripted(AUGMIX_EXACT_SCRIPT, policy, smooth_image(IMAGE_SEED))
    assert_near_reference(out, AUGMIX_EXACT_BLOCKS, AUGMIX_EXACT_PIXELS, ROUNDING, 0.15)


def test_augmix_jsd_views_match_the_reference_augmix_dataset(scripted):
    """Pins the JSD sample [clean, mix, mix] to google-research/augmix 9b9824c
    cifar.py:AugMixDataset.__getitem__ (no_jsd=False), run there with the exact-ops draws twice:
    the clean view is the image, each mix consumes one script in turn and matches the pins."""
    policy = AugMixPolicy(SEVERITY, 3, -1, 1.0, ops.AUGMIX_OPS)
    image = smooth_image(IMAGE_SEED)
    views = scripted(AUGMIX_EXACT_SCRIPT + AUGMIX_EXACT_SCRIPT, policy.jsd_views, image)
    assert views.shape == (3, 3, 32, 32) and torch.equal(views[0], image)
    for view in views[1:]:
        assert_near_reference(view, AUGMIX_EXACT_BLOCKS, AUGMIX_EXACT_PIXELS, ROUNDING, 0.15)


# Geometric ops over the whole image, borders and corners included. Weights (0.25, 0.5, 0.25),
# m = 0.75. Chain 1: rotate (u 0.6875, negative). Chain 2: shear_x (u 0.875, positive),
# autocontrast. Chain 3: shear_y (u 0.5, negative), translate_y (u 0.9375, negative).
AUGMIX_GEOMETRIC_SCRIPT = [
    ([0.25, 0.5, 0.25], 0.75),
    1, 3, 0.6875, 0.25,
    2, 5, 0.875, 0.75, 0,
    2, 6, 0.5, 0.25, 8, 0.9375, 0.25,
]  # fmt: skip
AUGMIX_GEOMETRIC_BLOCKS = [
    [[129.833, 77.739, 101.248, 104.728], [104.811, 173.589, 114.601, 136.546],
     [135.618, 96.81, 132.643, 142.996], [139.908, 118.244, 157.435, 118.693]],
    [[138.956, 157.936, 103.75, 129.869], [114.167, 117.403, 130.842, 98.773],
     [95.224, 120.759, 146.241, 103.518], [166.231, 95.78, 125.228, 116.733]],
    [[144.263, 149.63, 131.437, 131.513], [134.041, 159.577, 101.11, 129.02],
     [152.856, 155.802, 145.715, 101.512], [155.168, 160.039, 173.462, 89.475]],
]  # fmt: skip
AUGMIX_GEOMETRIC_PIXELS = [
    ((0, 0, 0), 98.625), ((1, 5, 20), 94.813), ((2, 16, 16), 141.5), ((0, 31, 31), 65.125),
    ((1, 25, 7), 129.625), ((2, 10, 28), 187.375), ((0, 12, 14), 177.25), ((1, 2, 28), 146.938),
    ((0, 0, 31), 49.0), ((2, 31, 0), 53.187),
]  # fmt: skip


def test_augmix_geometric_ops_match_the_reference_aug_up_to_the_border(scripted):
    """Pins AugMix with rotate, shear and autocontrast chains to the reference's output over the
    whole image, corners included (PIL's bilinear affine: truncated, 0 where the source point
    leaves the image), within the project's final rounding."""
    policy = AugMixPolicy(SEVERITY, 3, -1, 1.0, ops.AUGMIX_OPS)
    out = scripted(AUGMIX_GEOMETRIC_SCRIPT, policy, smooth_image(IMAGE_SEED))
    assert_near_reference(out, AUGMIX_GEOMETRIC_BLOCKS, AUGMIX_GEOMETRIC_PIXELS, ROUNDING, 0.1)


def test_augmix_all_ops_matches_the_reference_aug(scripted):
    """Pins AugMix with all_ops (colour, contrast, brightness, sharpness chains) to the reference's
    output, within the project's final rounding."""
    policy = AugMixPolicy(SEVERITY, 3, -1, 1.0, ops.AUGMIX_ALL_OPS)
    out = scripted(AUGMIX_ALL_OPS_SCRIPT, policy, smooth_image(IMAGE_SEED))
    assert_near_reference(out, AUGMIX_ALL_OPS_BLOCKS, AUGMIX_ALL_OPS_PIXELS, ROUNDING, 0.1)


# AugMix JSD: google-research/augmix 9b9824c cifar.py:train, the loss of its JSD branch
# (cross-entropy on the clean logits + 12 x mean KL to the mixture clamped at 1e-7), on logits
# randn(12, 10) (seed 7) x scale for a batch of 4, view-major [clean, aug1, aug2], labels [9, 9, 4, 7].
JSD_REFERENCE_LOSS = {3.0: 15.770619392, 30.0: 72.019111633}


@pytest.mark.parametrize("scale", sorted(JSD_REFERENCE_LOSS))
def test_jsd_loss_matches_the_reference_training_loss(scale):
    """Pins TrainLoss(name='jsd') on three views to the reference training loop's loss value
    (at scale 30, 22 mixture entries fall below the 1e-7 clamp)."""
    g = torch.Generator().manual_seed(7)
    logits = torch.randn(12, 10, generator=g)
    labels = torch.randint(0, 10, (4,), generator=g)
    assert labels.tolist() == [9, 9, 4, 7]
    assert float(logits.sum()) * 3 == pytest.approx(-27.657646, abs=1e-4)
    loss = TrainLoss(name="jsd")(logits * scale, smooth_targets(labels, 10), num_views=3)
    assert float(loss) == pytest.approx(JSD_REFERENCE_LOSS[scale], rel=1e-6)


# ---------------------------------------------------------------------------------------------
# PixMix: andyzoujm/pixmix f867e87 cifar.py:pixmix (k 4, beta 3, aug_severity 3, augmentations =
# ops.AUGMIX_OPS) on smooth_image(11) with mixing picture smooth_image(12), float output x 255, vs
# PixMixPolicy(k 4, beta 3).mix. Script: augment first? [op], number of mixings, then per mixing
# augmented partner? [op], mixing index (0 add, 1 multiply), (a, b).

PIXMIX_CASES = {
    # posterize (3 bits) first; picture add (0.75, 0.375); translate_x (-2 px) partner multiply
    # (1.25, -0.5); picture multiply (0.625, 0.25).
    "A": (
        [0.25, 2, 0.9375, 3, 0.75, 0, (0.75, 0.375), 0.25, 7, 0.75, 0.25, 1, (1.25, -0.5), 0.75, 1, (0.625, 0.25)],
        [
            [[132.067, 97.771, 137.261, 129.667], [119.657, 119.746, 112.05, 144.821],
             [142.911, 99.165, 133.871, 160.839], [148.446, 115.576, 145.303, 129.779]],
            [[142.127, 142.518, 126.085, 135.661], [139.034, 123.05, 149.028, 117.888],
             [122.171, 104.631, 168.535, 127.946], [118.163, 112.352, 153.221, 120.838]],
            [[186.332, 118.166, 137.113, 128.963], [141.678, 110.063, 118.647, 127.84],
             [148.159, 136.953, 112.97, 91.406], [152.794, 115.532, 134.974, 123.626]],
        ],
        [
            ((0, 0, 0), 172.203), ((1, 5, 20), 119.16), ((2, 16, 16), 118.501), ((0, 31, 31), 88.746),
            ((1, 25, 7), 107.63), ((2, 10, 28), 156.486), ((0, 12, 14), 92.14), ((1, 2, 28), 132.133),
        ],
    ),
    # the image itself; equalize partner add (1.5, -0.75); picture add (0.875, 0.125).
    "B": (
        [0.75, 2, 0.25, 1, 0, (1.5, -0.75), 0.75, 0, (0.875, 0.125)],
        [
            [[127.772, 119.462, 129.596, 131.105], [120.811, 141.566, 128.03, 132.393],
             [136.727, 117.113, 130.843, 141.65], [130.345, 127.087, 142.236, 133.303]],
            [[126.806, 137.005, 123.13, 129.503], [106.231, 125.009, 128.071, 117.706],
             [108.464, 114.573, 134.7, 124.552], [125.5, 119.034, 128.274, 122.559]],
            [[156.448, 145.835, 149.826, 148.493], [141.83, 143.866, 132.655, 140.718],
             [145.324, 152.625, 144.127, 132.816], [143.845, 144.532, 156.353, 138.154]],
        ],
        [
            ((0, 0, 0), 122.578), ((1, 5, 20), 126.359), ((2, 16, 16), 147.453), ((0, 31, 31), 120.016),
            ((1, 25, 7), 120.609), ((2, 10, 28), 147.672), ((0, 12, 14), 134.328), ((1, 2, 28), 125.422),
        ],
    ),
    # solarize (217) first; translate_y (+0 px) partner multiply (0.5, 0.5); picture add
    # (1.125, -0.25); posterize (4 bits) partner add (0.8125, 0.0625); picture multiply
    # (1.75, -0.875): 14% of the values clip at 0 or 255.
    "C": (
        [0.25, 4, 0.5, 4, 0.25, 8, 0.25, 0.75, 1, (0.5, 0.5), 0.75, 0, (1.125, -0.25),
         0.25, 2, 0.125, 0, (0.8125, 0.0625), 0.75, 1, (1.75, -0.875)],
        [
            [[175.368, 83.676, 84.983, 108.971], [118.436, 215.224, 111.646, 107.268],
             [118.188, 68.869, 116.564, 98.681], [154.561, 122.38, 134.488, 149.05]],
            [[157.095, 149.427, 73.288, 121.141], [129.451, 82.235, 81.584, 70.44],
             [110.415, 139.281, 92.613, 72.39], [213.445, 87.46, 72.103, 156.267]],
            [[107.229, 195.356, 123.688, 162.023], [125.869, 200.942, 82.03, 108.131],
             [152.566, 146.898, 195.106, 159.064], [143.93, 185.557, 184.772, 57.178]],
        ],
        [
            ((0, 0, 0), 255.0), ((1, 5, 20), 53.336), ((2, 16, 16), 171.772), ((0, 31, 31), 255.0),
            ((1, 25, 7), 255.0), ((2, 10, 28), 205.355), ((0, 12, 14), 255.0), ((1, 2, 28), 168.29),
        ],
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(PIXMIX_CASES))
def test_pixmix_matches_the_reference_pixmix(scripted, case):
    """Pins PixMix (optional first augmentation, 0..k add/multiply mixings with the picture or an
    augmented copy, both Beta branches, clipping) to the reference's float output within rounding."""
    script, blocks, pixels = PIXMIX_CASES[case]
    policy = PixMixPolicy(None, 4, 3.0, SEVERITY, ops.AUGMIX_OPS)
    out = scripted(script, policy.mix, smooth_image(IMAGE_SEED), smooth_image(PICTURE_SEED))
    assert_near_reference(out, blocks, pixels, ROUNDING, 0.2)


# ---------------------------------------------------------------------------------------------
# IPMix: hzlsaber/IPMix 050bcb6 cifar.py:ipmix (k 3, t 3, beta 3, aug_severity 3, patch sizes
# 4..32, IPMix_utils.augmentations = ops.IPMIX_OPS, mixings add, multiply, random_pixels,
# random_elems) on smooth_image(11) with mixing picture smooth_image(12), float output x 255, vs
# IPMixPolicy(k 3, t 3, beta 3, alpha 1, [4, 8, 16, 32], augmented_partner_prob 0).mix.
# Per patch the script holds: size index, mixing index, 0.5 (the picture is the partner), left,
# top, square? (0.25) or rectangle (0.75, w, h), then (a, b) or the mask tensor and its probability.

# Weights (0.5, 0.25, 0.25), m = 0.75. Chain 1 image-level, 3 ops: mirror, solarize (u 0.5), invert.
# Chain 2 patch-level, 3 patches: 16 px add (0.75, 0.25) at (5, 9); 8 px random pixels 5 x 7 at
# (20, 3); 32 px random elements 13 x 30 at (0, 0). Chain 3 patch-level, 2 patches: 4 px multiply
# (0.5, 0.375) 3 x 2 at (27, 1); 32 px multiply (0.875, 0.0625) at (0, 0).
IPMIX_SCRIPT = [
    ([0.5, 0.25, 0.25], 0.75),
    0.75, 3, 8, 3, 0.5, 9,
    0.25, 3,
    2, 0, 0.5, 5, 9, 0.25, (0.75, 0.25),
    1, 2, 0.5, 20, 3, 0.75, 5, 7, mask(1, (1, 7, 5)), 0.4375,
    3, 3, 0.5, 0, 0, 0.75, 13, 30, mask(2, (3, 30, 13)), 0.625,
    0.25, 2,
    0, 1, 0.5, 27, 1, 0.75, 3, 2, (0.5, 0.375),
    3, 1, 0.5, 0, 0, 0.25, (0.875, 0.0625),
]  # fmt: skip
IPMIX_BLOCKS = [
    [[141.25, 106.896, 135.481, 122.438], [109.416, 154.915, 115.951, 142.856],
     [132.188, 103.053, 145.516, 140.368], [133.779, 126.784, 148.194, 130.805]],
    [[138.124, 155.987, 108.742, 126.307], [120.176, 121.862, 134.735, 123.427],
     [111.993, 108.182, 147.521, 127.037], [138.467, 110.777, 136.771, 134.54]],
    [[141.11, 138.477, 123.749, 139.007], [132.069, 148.72, 100.311, 124.244],
     [137.654, 136.674, 126.177, 120.78], [151.664, 134.354, 156.18, 109.848]],
]  # fmt: skip
IPMIX_PIXELS = [
    ((0, 0, 0), 161.062), ((1, 5, 20), 108.313), ((2, 16, 16), 130.25), ((0, 31, 31), 147.813),
    ((1, 25, 7), 168.062), ((2, 10, 28), 146.312), ((0, 12, 14), 136.562), ((1, 2, 28), 141.688),
]  # fmt: skip

# Weights (0.375, 0.375, 0.25), m = 0.5. Chain 1 patch-level with no patch (the image). Chain 2
# image-level: equalize, posterize (u 0.9375: 3 bits), translate_y (u 0.75, negative: -2 px). Chain 3
# patch-level: 16 px add (1.75, -0.875) at (10, 4), whose values leave [0, 1]; 8 px random pixels at
# (2, 22).
IPMIX_CLIPPED_SCRIPT = [
    ([0.375, 0.375, 0.25], 0.5),
    0.25, 0,
    0.75, 3, 0, 1, 0.9375, 7, 0.75, 0.25,
    0.25, 2,
    2, 0, 0.5, 10, 4, 0.25, (1.75, -0.875),
    1, 2, 0.5, 2, 22, 0.25, mask(3, (1, 8, 8)), 0.5,
]  # fmt: skip
IPMIX_CLIPPED_BLOCKS = [
    [[135.628, 71.03, 99.983, 114.814], [93.672, 168.53, 108.645, 135.449],
     [139.773, 81.578, 127.182, 150.407], [136.974, 113.585, 155.097, 133.989]],
    [[142.434, 159.506, 97.6, 134.363], [104.851, 104.297, 120.888, 93.646],
     [77.235, 111.763, 144.352, 99.87], [158.475, 85.231, 118.706, 128.484]],
    [[143.217, 147.78, 129.456, 137.0], [122.331, 154.116, 93.748, 121.885],
     [133.362, 150.017, 140.688, 106.152], [145.158, 143.168, 183.643, 86.759]],
]  # fmt: skip
IPMIX_CLIPPED_PIXELS = [
    ((0, 0, 0), 124.312), ((1, 5, 20), 76.188), ((2, 16, 16), 135.75), ((0, 31, 31), 132.062),
    ((1, 25, 7), 167.312), ((2, 10, 28), 178.188), ((0, 12, 14), 159.125), ((1, 2, 28), 169.25),
]  # fmt: skip


def test_ipmix_matches_the_reference_ipmix(scripted):
    """Pins IPMix (an image-level chain with mirror/invert, patch-level chains with all four mixings,
    square and rectangular patches) to the reference's float output, within the project's final
    rounding: both paste each mixed patch truncated to uint8 (the reference through ToPILImage)."""
    policy = IPMixPolicy(None, 3, 3, 3.0, SEVERITY, 1.0, [4, 8, 16, 32], 0.0)
    out = scripted(IPMIX_SCRIPT, policy.mix, smooth_image(IMAGE_SEED), smooth_image(PICTURE_SEED))
    assert_near_reference(out, IPMIX_BLOCKS, IPMIX_PIXELS, ROUNDING, 0.1)


def test_ipmix_matches_the_reference_outside_a_patch_it_clips(scripted):
    """Pins IPMix with an empty chain, an image-level chain and an extrapolating patch: equal to the
    reference within rounding everywhere except that patch, whose out-of-range values the project
    clips (documented in ipmix.py) where the reference's uint8 cast wraps them (there the reference
    has 159.125 at (0, 12, 14), the project 186)."""
    policy = IPMixPolicy(None, 3, 3, 3.0, SEVERITY, 1.0, [4, 8, 16, 32], 0.0)
    out = scripted(IPMIX_CLIPPED_SCRIPT, policy.mix, smooth_image(IMAGE_SEED), smooth_image(PICTURE_SEED))
    outside = torch.ones(3, 32, 32, dtype=torch.bool)
    outside[:, 4:20, 10:26] = False
    assert_near_reference(out, IPMIX_CLIPPED_BLOCKS, IPMIX_CLIPPED_PIXELS, ROUNDING, 0.15, where=outside)
    assert float(out[0, 12, 14]) - 159.125 > 20
