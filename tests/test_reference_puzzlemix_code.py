"""Outputs of the batch-mixing baselines pinned to what the authors' code gave on the same inputs.

Each constant below was produced by running the reference code (not part of this project) side by
side with this project's function on identical inputs and identical random draws; the two agreed to
float precision (image differences <= 1.2e-7, label weights, boxes, masks and block sources exact).
The tests rebuild the same inputs and draws without the reference code and check the project's
output against those numbers, so a change that drifts from the reference fails here.

References (snapshots fetched for the comparison):
- snu-mllab/PuzzleMix at e2dbf3a: mixup.py (mixup_process, mixup_box, mixup_graph), main.py (train,
  the adversarial branch), models/preresnet.py (PreActResNet.forward with mixup_hidden);
- snu-mllab/Co-Mixup at 2a76816: mixup.py (mixup_process), match.py (get_onehot_matrix, mix_input),
  main.py (train, the compatibility distance A_dist).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from diffusemix_bench.augment import AugContext, create_aug
from diffusemix_bench.augment.mixing import cutmix as cutmix_module
from diffusemix_bench.augment.mixing import manifold_mixup as manifold_module
from diffusemix_bench.augment.mixing import mixup as mixup_module
from diffusemix_bench.augment.mixing.batch_mix import Box, sample_box
from diffusemix_bench.augment.mixing.comixup import co_mixup, compatibility_distance
from diffusemix_bench.augment.mixing.puzzlemix import puzzle_mix
from diffusemix_bench.models.classifier import ImageClassifier
from diffusemix_bench.models.preact_resnet import PreActResNet
from diffusemix_bench.robustness.adversarial_training import FastAdversarial

K = 10
REL = 1e-5


def close(actual: torch.Tensor, expected, rtol: float = REL, atol: float = 0.0) -> None:
    torch.testing.assert_close(
        actual.double(), torch.tensor(expected, dtype=torch.float64), rtol=rtol, atol=atol
    )


def noise_images(*shape: int) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(0))


def mixing_aug(name: str, **settings):
    return create_aug({"name": name, **settings}, AugContext(num_classes=K, dataset_name="cifar100"))


def position_moments(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per image: the sum, and the sums weighted by row and by column position (0 to 1), which also
    change when blocks move without changing the total."""
    ramp = torch.arange(images.shape[-1], dtype=images.dtype) / (images.shape[-1] - 1)
    return (
        images.sum((1, 2, 3)),
        (images * ramp[:, None]).sum((1, 2, 3)),
        (images * ramp).sum((1, 2, 3)),
    )


# ---------------------------------------------------------------- Mixup

# snu-mllab/PuzzleMix e2dbf3a, mixup.py: mixup_process (hidden=0, box and graph off) after
# np.random.seed(6): its draws (block_num, then np.random.permutation(4), then np.random.beta(1, 1)).
MIXUP_LAM = 0.14792801325577534
MIXUP_PERM = [3, 2, 0, 1]
MIXUP_SUMS = [1170.1190185546875, 1155.88525390625, 1151.0592041015625, 1138.5809326171875]
MIXUP_PIXELS_0_5_7 = [0.26983168721199036, 0.48584145307540894, 0.6680724620819092, 0.12199318408966064]
MIXUP_PIXELS_2_20_30 = [0.022488413378596306, 0.3013516068458557, 0.03575656935572624, 0.709613025188446]


def test_mixup_matches_puzzlemix_mixup_process(monkeypatch):
    """aug=mixup on 4 noise images (3x24x32) with the reference's lam and permutation: the mixed
    images (per-image sums, two pixels per image) and the target weights of mixup_process."""
    images = noise_images(4, 3, 24, 32)
    labels = torch.tensor([3, 7, 1, 9])
    targets = F.one_hot(labels, K).float()
    monkeypatch.setattr(mixup_module, "sample_lambda", lambda alpha: MIXUP_LAM)
    monkeypatch.setattr(mixup_module, "random_pairing", lambda n, device: torch.tensor(MIXUP_PERM))
    out = mixing_aug("mixup", alpha=1.0, prob=1.0).apply(images, targets, None, None)
    close(out.inputs.sum((1, 2, 3)), MIXUP_SUMS)
    close(out.inputs[:, 0, 5, 7], MIXUP_PIXELS_0_5_7)
    close(out.inputs[:, 2, 20, 30], MIXUP_PIXELS_2_20_30)
    # mixup_process: target * lam + target[indices] * (1 - lam).
    expected = torch.zeros(4, K)
    for i, (own, partner) in enumerate([(3, 9), (7, 1), (1, 3), (9, 7)]):
        expected[i, own] += MIXUP_LAM
        expected[i, partner] += 1 - MIXUP_LAM
    torch.testing.assert_close(out.targets, expected)


# ---------------------------------------------------------------- CutMix, box rule puzzlemix

# snu-mllab/PuzzleMix e2dbf3a, mixup.py: mixup_box(input1, input1[indices], alpha=lam) on 4 noise
# images 3x24x32 with indices [2, 3, 1, 0]; (rx, ry) are its np.random.uniform draws (rows, columns)
# after np.random.seed(5), the box the rows x1:x2 and columns y1:y2 it pasted, the ratio it returned.
CUTMIX_CASES = [
    # lam, (rx, ry), Box(y1, y2, x1, x2), ratio, per-image sums
    (0.3, (5.327836106153748, 27.863433797676045), (0, 15, 14, 32), 0.6484375,
     [1152.954833984375, 1150.8636474609375, 1161.7401123046875, 1150.0858154296875]),
    (0.75, (4.961259728146234, 29.39554905401349), (0, 10, 21, 32), 0.8567708134651184,
     [1155.9296875, 1133.0404052734375, 1159.875, 1166.7991943359375]),
    (0.55, (11.721868531075899, 19.575803612884663), (3, 19, 8, 30), 0.5416666865348816,
     [1152.7711181640625, 1155.856201171875, 1152.9395751953125, 1154.0771484375]),
    (0.1, (18.381788555527574, 16.589375611934184), (6, 24, 1, 31), 0.296875,
     [1161.28515625, 1162.022705078125, 1130.336181640625, 1162.000244140625]),
]  # fmt: skip


@pytest.mark.parametrize(("lam", "centre", "box", "ratio", "sums"), CUTMIX_CASES)
def test_cutmix_puzzlemix_box_rule_matches_mixup_box(monkeypatch, lam, centre, box, ratio, sums):
    """aug=cutmix with aug.box_rule=puzzlemix and the reference's lam and box centre: the box
    (clipped, truncated), the label weight and the pasted images equal mixup_box's."""
    assert sample_box(lam, 24, 32, center=centre, rule="puzzlemix") == Box(*box)
    images = noise_images(4, 3, 24, 32)
    labels = torch.tensor([3, 7, 1, 9])
    targets = F.one_hot(labels, K).float()
    perm = torch.tensor([2, 3, 1, 0])
    monkeypatch.setattr(cutmix_module, "sample_lambda", lambda alpha: lam)
    monkeypatch.setattr(cutmix_module, "random_pairing", lambda n, device: perm)
    monkeypatch.setattr(
        cutmix_module, "sample_box", lambda lam, h, w, rule: sample_box(lam, h, w, center=centre, rule=rule)
    )
    aug = mixing_aug("cutmix", alpha=1.0, prob=1.0, box_rule="puzzlemix")
    out = aug.apply(images, targets, None, None)
    close(out.inputs.sum((1, 2, 3)), sums)
    y1, y2, x1, x2 = box
    pasted = (out.inputs != images).any(1).any(0).nonzero()
    rows, cols = pasted[:, 0], pasted[:, 1]
    assert (int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1) == box
    torch.testing.assert_close(out.inputs[..., y1:y2, x1:x2], images[perm][..., y1:y2, x1:x2], rtol=0, atol=0)
    close(out.targets[torch.arange(4), labels], [ratio] * 4, rtol=1e-6)
    close(out.targets[torch.arange(4), labels[perm]], [1 - ratio] * 4, rtol=1e-6)


# ---------------------------------------------------------------- Manifold Mixup


def fill_deterministic(model: nn.Module) -> None:
    """Every parameter and buffer drawn from one seeded generator, in state-dict order."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith("num_batches_tracked"):
                continue
            if name.endswith("running_var"):
                t.copy_(0.5 + torch.rand(t.shape, generator=g))
            elif name.endswith("running_mean"):
                t.copy_(0.1 * torch.randn(t.shape, generator=g))
            elif name.endswith(".weight") and t.dim() == 1:  # BatchNorm scale
                t.copy_(0.75 + 0.5 * torch.rand(t.shape, generator=g))
            elif name.endswith(".bias"):
                t.copy_(0.1 * torch.randn(t.shape, generator=g))
            else:
                t.copy_(torch.randn(t.shape, generator=g) * (2.0 / t[0].numel()) ** 0.5)


# snu-mllab/PuzzleMix e2dbf3a, models/preresnet.py: PreActResNet(PreActBlock, [2, 2, 2, 2], 16, 10)
# holding this project's PreActResNet((2, 2, 2, 2), 10, width=16) state dict (keys match), train
# mode, forward(x, target, mixup_hidden=True) with random.randint -> layer, np.random.permutation ->
# [2, 3, 1, 0], np.random.beta -> 0.3. Per layer: the mixed state entering the next stage (sums, and
# [:, 1, 2, 3]) and the logits of classes 0, 3 and 7.
MANIFOLD_CASES = {
    0: (
        "conv1",
        [1549.601806640625, 1541.3489990234375, 1536.7421875, 1535.1783447265625],
        [0.26654279232025146, 0.560122549533844, 0.28433260321617126, 0.7667723894119263],
        [[-3.656996011734009, -0.55708247423172, -0.06996168196201324],
         [-3.0714938640594482, -0.4961754381656647, -0.08693476021289825],
         [-2.3676726818084717, -0.14033281803131104, -0.24180062115192413],
         [-3.325549364089966, 0.8234606385231018, 1.0623270273208618]],
    ),
    1: (
        "layer2",
        [-83.14202117919922, -228.19100952148438, -373.3188171386719, -166.6341094970703],
        [-0.4603962302207947, 2.3499417304992676, -0.1428314745426178, 1.1037399768829346],
        [[-3.1451547145843506, 0.018059562891721725, -0.15131954848766327],
         [-2.5183515548706055, -0.005214575678110123, -0.035399213433265686],
         [-2.2379698753356934, -0.642022967338562, -0.6034523248672485],
         [-3.9527106285095215, 0.5081163048744202, 1.9730823040008545]],
    ),
    2: (
        "layer3",
        [446.851318359375, 460.78765869140625, 520.9193115234375, 399.61328125],
        [-0.10903368890285492, 1.3722232580184937, 0.10852323472499847, 0.9845242500305176],
        [[-3.1299779415130615, -0.3593064844608307, 0.06204889714717865],
         [-3.1710011959075928, 0.1464150846004486, -0.2972477674484253],
         [-2.6132707595825195, -0.3036958575248718, -0.5872442126274109],
         [-3.1546409130096436, -0.3394601047039032, 1.0719504356384277]],
    ),
}  # fmt: skip


@pytest.mark.parametrize("layer", [0, 1, 2])
def test_manifold_mixup_matches_preresnet_mixup_hidden(monkeypatch, layer):
    """aug=manifold_mixup with aug.layers=[layer] on a width-16 PreActResNet18 with fixed weights, the
    reference's lam and permutation: the mixed hidden state where the reference mixes it (input,
    after layer1, after layer2), the logits and the label weights."""
    module_name, hidden_sums, hidden_values, logits_037 = MANIFOLD_CASES[layer]
    backbone = PreActResNet((2, 2, 2, 2), K, width=16)
    fill_deterministic(backbone)
    model = ImageClassifier(backbone, ("linear",), mean=(0, 0, 0), std=(1, 1, 1)).train()
    images = noise_images(4, 3, 32, 32)
    labels = torch.tensor([3, 7, 1, 9])
    targets = F.one_hot(labels, K).float()
    perm = torch.tensor([2, 3, 1, 0])
    monkeypatch.setattr(manifold_module, "sample_lambda", lambda alpha: 0.3)
    monkeypatch.setattr(manifold_module, "random_pairing", lambda n, device: perm)
    aug = mixing_aug("manifold_mixup", alpha=1.0, prob=1.0, layers=[layer])
    batch = aug.apply(images, targets, None, model)
    seen = {}
    hook = getattr(backbone, module_name).register_forward_pre_hook(lambda m, i: seen.setdefault("h", i[0]))
    with torch.no_grad():
        logits = aug.logits(model, batch)
    hook.remove()
    close(seen["h"].sum((1, 2, 3)), hidden_sums)
    close(seen["h"][:, 1, 2, 3], hidden_values)
    close(logits[:, [0, 3, 7]], logits_037, atol=1e-5)
    torch.testing.assert_close(batch.targets, 0.3 * targets + 0.7 * targets[perm])


# ---------------------------------------------------------------- PuzzleMix

PM_MEAN = torch.tensor([0.5, 0.4, 0.3]).view(1, 3, 1, 1)


def puzzlemix_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    """4 noise images and a blocky, peaked saliency map per image (so the masks and transport have
    something to follow)."""
    g = torch.Generator().manual_seed(0)
    images = torch.rand(4, 3, 32, 32, generator=g)
    coarse = torch.rand(4, 1, 8, 8, generator=g) ** 6
    saliency = F.interpolate(coarse, size=32)[:, 0] + 0.01 * torch.rand(4, 32, 32, generator=g)
    return images, saliency


# snu-mllab/PuzzleMix e2dbf3a, mixup.py: mixup_graph(input1=(images - mean) / std, grad1=saliency,
# indices=[2, 3, 1, 0], alpha=lam, beta=1.2, gamma=0.5, eta=0.2, neigh_size=4, t_eps=0.8, mean=(0.5,
# 0.4, 0.3), std=(0.25, 0.2, 0.3)), output un-normalised to pixels. Per case: the ratio; per image the
# sum and row/column moments of the output; without transport the block mask (own share x 2, from
# which source each block's pixels came); with transport the pixels per image that the transport
# changed (vs the same call with transport=False).
PUZZLEMIX_CASES = [
    # block_num, n_labels, transport, t_size, lam, ratio, sums, row moments, col moments, mask x 2 / moved
    (4, 2, False, 4, 0.4, [0.3125, 0.5, 0.125, 0.375],
     [1559.39111328125, 1546.7977294921875, 1531.3145751953125, 1523.82470703125],
     [786.8897705078125, 776.6798095703125, 768.0267944335938, 770.6489868164062],
     [771.5299682617188, 779.2747802734375, 772.806640625, 759.55078125],
     [[[0, 0, 2, 2], [0, 0, 0, 2], [2, 0, 0, 0], [2, 0, 0, 0]],
      [[2, 2, 0, 2], [2, 2, 0, 0], [0, 0, 0, 2], [0, 0, 2, 2]],
      [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [2, 2, 0, 0]],
      [[2, 0, 0, 0], [2, 0, 2, 2], [0, 0, 2, 2], [0, 0, 0, 0]]]),
    (4, 3, False, 4, 0.4, [0.375, 0.5, 0.375, 0.375],
     [1561.4295654296875, 1538.8046875, 1538.65185546875, 1535.5953369140625],
     [786.7229614257812, 771.6832885742188, 773.082763671875, 777.9725952148438],
     [774.296630859375, 773.9492797851562, 774.7532348632812, 765.5897216796875],
     [[[0, 1, 2, 1], [1, 1, 1, 1], [2, 0, 0, 0], [2, 0, 0, 0]],
      [[2, 2, 0, 1], [2, 2, 0, 0], [1, 1, 0, 1], [0, 1, 1, 2]],
      [[0, 0, 0, 1], [0, 1, 0, 1], [0, 1, 1, 1], [2, 2, 1, 1]],
      [[2, 1, 0, 0], [1, 0, 2, 1], [0, 0, 2, 1], [0, 0, 1, 1]]]),
    # t_size 4 < 8 px blocks: the mask is upsampled and the transport runs on an 8x8 grid.
    (4, 3, True, 4, 0.4, [0.375, 0.5, 0.375, 0.375],
     [1560.895263671875, 1538.70263671875, 1538.0750732421875, 1541.7125244140625],
     [786.7771606445312, 771.34130859375, 772.700439453125, 780.5230712890625],
     [774.1185913085938, 774.1325073242188, 775.049072265625, 767.9146728515625],
     [48, 64, 32, 64]),
    (8, 3, True, 4, 0.6, [0.5625, 0.546875, 0.5078125, 0.5703125],
     [1551.6634521484375, 1543.629150390625, 1535.7362060546875, 1528.0260009765625],
     [780.3965454101562, 775.4566650390625, 771.87353515625, 770.790771484375],
     [770.1895141601562, 777.974365234375, 771.7324829101562, 761.5244140625],
     [48, 16, 48, 16]),
    (2, 2, True, 4, 0.5, [0.25, 0.25, 0.5, 0.25],
     [1553.714599609375, 1545.240478515625, 1544.5341796875, 1535.76806640625],
     [781.6414794921875, 776.645751953125, 775.661865234375, 780.0316162109375],
     [770.8807373046875, 777.286865234375, 778.9457397460938, 764.301513671875],
     [48, 64, 64, 16]),
    (8, 2, True, -1, 0.3, [0.40625, 0.234375, 0.40625, 0.328125],
     [1562.3328857421875, 1548.5689697265625, 1534.7120361328125, 1520.914306640625],
     [786.2748413085938, 778.1467895507812, 768.5076904296875, 769.1448974609375],
     [773.978515625, 781.6519165039062, 770.1774291992188, 753.0044555664062],
     [48, 16, 16, 48]),
]  # fmt: skip


@pytest.mark.parametrize("solver", ["gco", "python"])
@pytest.mark.parametrize(
    ("block_num", "n_labels", "transport", "t_size", "lam", "ratio", "sums", "rows", "cols", "mask_or_moved"),
    PUZZLEMIX_CASES,
)
def test_puzzlemix_matches_mixup_graph(
    solver, block_num, n_labels, transport, t_size, lam, ratio, sums, rows, cols, mask_or_moved
):
    """puzzle_mix (fill = the normalisation mean, smoothness on pixels as aug.smoothness_input=pixels)
    with the reference's saliency, partners, lam and block count: ratio, mixed images, and the block
    mask (without transport) or the pixels moved by the transport, as mixup_graph gave them."""
    images, saliency = puzzlemix_inputs()
    perm = torch.tensor([2, 3, 1, 0])
    settings = dict(block_num=block_num, lam=lam, beta=1.2, gamma=0.5, eta=0.2, neigh_size=4,
                    n_labels=n_labels, t_eps=0.8, t_size=t_size, smooth_images=images, fill=PM_MEAN,
                    solver=solver)  # fmt: skip
    out, out_ratio = puzzle_mix(images, saliency, perm, transport=transport, **settings)
    assert out_ratio.tolist() == ratio
    for got, expected in zip(position_moments(out), (sums, rows, cols)):
        close(got, expected)
    if transport:
        plain, _ = puzzle_mix(images, saliency, perm, transport=False, **settings)
        moved = ((out - plain).abs().amax(1) > 1e-6).sum((1, 2))
        assert moved.tolist() == mask_or_moved
    else:
        own = (out - images).abs().amax(1) < 1e-6
        partner = (out - images[perm]).abs().amax(1) < 1e-6
        level = torch.where(own & ~partner, 2, torch.where(partner & ~own, 0, 1)).float()
        assert (F.avg_pool2d(level[:, None], 32 // block_num)[:, 0]).tolist() == mask_or_moved


# The same call (snu-mllab/PuzzleMix e2dbf3a, mixup.py: mixup_graph, transport on) when the bottom
# half of every saliency map is exactly 0: the shown blocks there all bid 0 in mask_transport, whose
# column resolve (plan * cost).min(-2) then picks a row that is not bidding, so they get no block and
# show the normalised 0 (the mean). Per case: ratio, per-image sums and moments, and per image the
# pixels left at the mean and the pixels the transport changed.
PUZZLEMIX_EMPTY_CASES = [
    # block_num, n_labels, t_size, lam, ratio, sums, row moments, col moments, at the mean, moved
    (4, 3, 4, 0.4, [0.46875, 0.5, 0.4375, 0.5],
     [1391.3013916015625, 1381.3319091796875, 1381.2855224609375, 1373.1905517578125],
     [656.30859375, 651.6190795898438, 652.3016357421875, 651.3575439453125],
     [689.31494140625, 699.6420288085938, 692.32470703125, 686.3712158203125],
     [480, 496, 480, 496], [528, 544, 592, 576]),
    (4, 2, -1, 0.5, [0.8125, 0.8125, 0.8125, 0.75],
     [1410.35205078125, 1397.724365234375, 1417.6029052734375, 1369.0927734375],
     [668.3965454101562, 659.807373046875, 667.3995361328125, 650.1520385742188],
     [690.0139770507812, 705.2752075195312, 708.0355834960938, 687.8814697265625],
     [448, 448, 448, 512], [512, 576, 576, 512]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("block_num", "n_labels", "t_size", "lam", "ratio", "sums", "rows", "cols", "at_mean", "moved"),
    PUZZLEMIX_EMPTY_CASES,
)
def test_puzzlemix_transport_empties_zero_saliency_blocks_as_mixup_graph(
    block_num, n_labels, t_size, lam, ratio, sums, rows, cols, at_mean, moved
):
    """puzzle_mix with transport where half of each saliency map is 0: the blocks the reference's
    transport leaves empty show ``fill`` (the mean, as the reference's normalised 0), and the
    mixed images equal mixup_graph's."""
    images, saliency = puzzlemix_inputs()
    saliency[:, 16:, :] = 0.0
    perm = torch.tensor([2, 3, 1, 0])
    settings = dict(block_num=block_num, lam=lam, beta=1.2, gamma=0.5, eta=0.2, neigh_size=4,
                    n_labels=n_labels, t_eps=0.8, t_size=t_size, smooth_images=images, fill=PM_MEAN)  # fmt: skip
    out, out_ratio = puzzle_mix(images, saliency, perm, transport=True, **settings)
    plain, _ = puzzle_mix(images, saliency, perm, transport=False, **settings)
    assert out_ratio.tolist() == ratio
    for got, expected in zip(position_moments(out), (sums, rows, cols)):
        close(got, expected)
    assert ((out - PM_MEAN).abs().amax(1) < 1e-7).sum((1, 2)).tolist() == at_mean
    assert ((out - plain).abs().amax(1) > 1e-6).sum((1, 2)).tolist() == moved


# ---------------------------------------------------------------- Co-Mixup


def comixup_inputs(n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    images = torch.rand(n, 3, 32, 32, generator=g)
    coarse = torch.rand(n, 1, 8, 8, generator=g) ** 4
    saliency = F.interpolate(coarse, size=32)[:, 0] + 0.01 * torch.rand(n, 32, 32, generator=g)
    targets = F.one_hot(torch.arange(n) * 3 % K, K).float()
    return images, saliency, targets


def comixup_draws(n: int, part: int, block: int) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
    """Per partition size: the Dirichlet prior and the random initial labelling of each partition
    of that size, in batch order (the reference draws them partition by partition)."""
    g = torch.Generator().manual_seed(7)
    draws: dict[int, list] = {}
    for start in range(0, n, part):
        size = min(part, n - start)
        e = -torch.log(torch.rand(size, generator=g))
        draws.setdefault(size, []).append(
            (e / e.sum(), torch.randint(0, size, (size, block, block), generator=g))
        )
    return {
        size: (torch.stack([p for p, _ in d]), torch.stack([i for _, i in d])) for size, d in draws.items()
    }


# snu-mllab/Co-Mixup 2a76816, mixup.py: mixup_process(images, one-hot targets, sc=saliency,
# A_dist=main.py's l1 distance of the 8x8-pooled saliency peaks) with m_block_num 4, m_beta 0.32,
# m_gamma 1.0, m_eta 0.05, m_omega 0.001, m_niter 4, set_resolve, mixup_alpha 2.0, m_thres 0.83,
# Dirichlet(...).sample() and match.random_initialize returning the draws of comixup_draws. Per
# case: each output's soft target (class: weight), per-image sum and moments, and each 8x8 block's
# source input (-1: a half-half mix of two inputs).
COMIXUP_CASES = [
    # n, part, thres_type, targets, sums, row moments, col moments, block sources
    (4, 4, "hard",
     [{3: 0.625, 9: 0.375}, {0: 0.9375, 3: 0.0625}, {3: 0.875, 6: 0.125}, {6: 0.5, 9: 0.5}],
     [1532.998291015625, 1525.5701904296875, 1531.314697265625, 1558.191650390625],
     [769.633544921875, 771.7481689453125, 768.0267944335938, 786.6314697265625],
     [769.8966064453125, 760.271484375, 772.806640625, 778.1041259765625],
     [[[1, 1, 3, 1], [1, 1, 3, 3], [1, 1, 3, 3], [3, 1, 1, 1]],
      [[-1, 0, 0, 0], [-1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]],
      [[1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1], [2, 2, 1, 1]],
      [[3, -1, 3, 2], [-1, 2, 3, 3], [3, 2, -1, -1], [3, 2, 2, 2]]]),
    (4, 4, "soft",
     [{3: 0.875, 6: 0.0625, 9: 0.0625}, {0: 0.3125, 6: 0.6875}, {0: 0.625, 9: 0.375}, {6: 0.5, 9: 0.5}],
     [1536.7884521484375, 1559.39111328125, 1523.82470703125, 1558.191650390625],
     [772.95263671875, 786.8897705078125, 770.6489868164062, 786.6314697265625],
     [773.8988647460938, 771.5299682617188, 759.55078125, 778.1041259765625],
     [[[1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1], [3, 2, 1, 1]],
      [[2, 2, 0, 0], [2, 2, 2, 0], [0, 2, 2, 2], [0, 2, 2, 2]],
      [[3, 0, 0, 0], [3, 0, 3, 3], [0, 0, 3, 3], [0, 0, 0, 0]],
      [[3, -1, 3, 2], [-1, 2, 3, 3], [3, 2, -1, -1], [3, 2, 2, 2]]]),
    # Partitions of 4 and 3 inputs.
    (7, 4, "hard",
     [{3: 0.5, 6: 0.5}, {0: 0.5625, 3: 0.4375}, {6: 0.53125, 9: 0.46875}, {0: 0.5625, 9: 0.4375},
      {2: 0.3125, 5: 0.375, 8: 0.3125}, {2: 0.3125, 5: 0.375, 8: 0.3125}, {2: 0.3125, 5: 0.375, 8: 0.3125}],
     [1534.44384765625, 1524.32421875, 1544.8165283203125, 1543.00927734375, 1547.2957763671875,
      1547.2957763671875, 1547.2957763671875],
     [768.6902465820312, 770.539306640625, 775.7692260742188, 780.2776489257812, 779.0504150390625,
      779.0504150390625, 779.0504150390625],
     [773.216064453125, 763.1331176757812, 776.3572998046875, 767.7230224609375, 774.176513671875,
      774.176513671875, 774.176513671875],
     [[[-1, 1, 1, -1], [1, 1, 1, 2], [-1, 1, -1, 2], [2, 2, 2, 2]],
      [[-1, 1, 1, 0], [1, -1, 1, 0], [0, 0, -1, -1], [0, 0, -1, -1]],
      [[3, 3, -1, -1], [-1, 3, 3, -1], [2, -1, 3, 2], [2, 2, 2, 2]],
      [[3, 3, -1, 0], [0, -1, 3, -1], [0, 0, 3, -1], [0, 0, -1, -1]],
      [[4, 4, -1, -1], [6, -1, 5, 5], [6, 6, 5, 4], [5, 4, -1, 6]],
      [[4, 4, -1, -1], [6, -1, 5, 5], [6, 6, 5, 4], [5, 4, -1, 6]],
      [[4, 4, -1, -1], [6, -1, 5, 5], [6, 6, 5, 4], [5, 4, -1, 6]]]),
]  # fmt: skip

# Co-Mixup main.py's A_dist for the 4-image inputs (equal to compatibility_distance).
COMIXUP_COMPAT_4 = [[0, 20, 24, 4], [20, 0, 20, 24], [24, 20, 0, 28], [4, 24, 28, 0]]


def test_comixup_compatibility_matches_main_py_distance():
    """compatibility_distance of the 4-image saliency equals Co-Mixup main.py's A_dist."""
    _, saliency, _ = comixup_inputs(4)
    assert compatibility_distance(saliency).tolist() == COMIXUP_COMPAT_4


@pytest.mark.parametrize("solver", ["gco", "python"])
@pytest.mark.parametrize(
    ("n", "part", "thres_type", "targets", "sums", "rows", "cols", "sources"), COMIXUP_CASES
)
def test_comixup_matches_mixup_process(
    monkeypatch, solver, n, part, thres_type, targets, sums, rows, cols, sources
):
    """co_mixup on a 4x4 grid with the reference's Dirichlet priors and initial labellings: the mixed
    images (block sources, sums, moments) and soft targets of mixup_process (get_onehot_matrix +
    mix_input)."""
    images, saliency, onehot = comixup_inputs(n)
    draws = comixup_draws(n, part, 4)
    monkeypatch.setattr(
        torch.distributions.Dirichlet,
        "sample",
        lambda self, *a: draws[self.concentration.shape[-1]][0].clone(),
    )
    real_randint = torch.randint

    def fixed_randint(low, high, size=None, *args, **kwargs):
        if size is not None and len(size) == 4:  # co_mixup_masks' initial labelling
            return draws[size[1]][1].clone()
        return real_randint(low, high, size, *args, **kwargs)

    monkeypatch.setattr(torch, "randint", fixed_randint)
    pooled = F.avg_pool2d(saliency[:, None], 8)[:, 0]
    out, out_targets = co_mixup(
        images, onehot, pooled, compatibility_distance(saliency), part=part, alpha=2.0, beta=0.32,
        gamma=1.0, eta=0.05, omega=0.001, thres=0.83, thres_type=thres_type, set_resolve=True, niter=4,
        solver=solver,
    )  # fmt: skip
    monkeypatch.undo()
    expected = torch.zeros(n, K)
    for i, weights in enumerate(targets):
        for cls, w in weights.items():
            expected[i, cls] = w
    torch.testing.assert_close(out_targets, expected)
    for got, want in zip(position_moments(out), (sums, rows, cols)):
        close(got, want)
    source = torch.full((n, 4, 4), -1)
    for o in range(n):
        first = o // part * part
        for i in range(first, min(first + part, n)):
            same = ((out[o] - images[i]).abs().amax(0) < 1e-6).float()
            source[o][F.avg_pool2d(same[None, None], 8)[0, 0] == 1] = i
    assert source.tolist() == sources


# ---------------------------------------------------------------- fast adversarial training

ADV_MEAN, ADV_STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
ADV_COEF = 0.6180339887  # the reference's adv_mix_coef = np.random.uniform(0, 1), fixed


def adversarial_setup() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, ImageClassifier]:
    """Images (two saturated corners, so the random start is clamped there), labels, the U(0, 1)
    behind the random start, and a small classifier with fixed weights and normalisation inside."""
    g = torch.Generator().manual_seed(0)
    images = torch.rand(4, 3, 32, 32, generator=g)
    images[0, :, :4, :4] = 1.0
    images[1, :, -4:, -4:] = 0.0
    labels = torch.tensor([1, 4, 0, 2])
    unit = torch.rand(4, 3, 32, 32, generator=g)
    gw = torch.Generator().manual_seed(3)
    backbone = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, 5)
    )
    with torch.no_grad():
        for p in backbone.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=gw))
    return (
        images,
        labels,
        unit,
        F.one_hot(labels, 5).float(),
        ImageClassifier(backbone, ("4",), mean=ADV_MEAN, std=ADV_STD),
    )


def fix_adversarial_draws(monkeypatch, unit: torch.Tensor, coins: list[float] | None = None) -> None:
    """uniform_(a, b) gives a + (b - a) * unit; torch.rand(()) the scale; torch.rand(2) the coins."""
    monkeypatch.setattr(torch.Tensor, "uniform_", lambda self, a, b: self.copy_(a + (b - a) * unit))
    real_rand = torch.rand

    def fixed_rand(*size, **kwargs):
        if size in ((), ((),)):
            return torch.tensor(ADV_COEF)
        if size == (2,) and coins is not None:
            return torch.tensor(coins)
        return real_rand(*size, **kwargs)

    monkeypatch.setattr(torch, "rand", fixed_rand)


# snu-mllab/PuzzleMix e2dbf3a, main.py: train(), the adversarial branch (args.graph, adv_p > 0,
# clean_lam 0, adv_eps 10): random start uniform_(-10/255, 10/255) from `unit`, clamped in pixel
# space; eval-mode cross-entropy gradient at the normalised noisy input; noise += 12/255 * sign(grad),
# clamped to +-10/255, times adv_mix_coef; then mixup_graph's clamp(input * std + mean + noise, 0, 1).
FAST_ADV_SUMS = [1567.543701171875, 1511.20166015625, 1544.0567626953125, 1549.1558837890625]
FAST_ADV_ABS_DELTA_SUMS_255 = [15621.0888671875, 15713.388671875, 15849.6806640625, 15882.3017578125]
FAST_ADV_DELTA_255_0_0_0 = [-6.180337905883789, 6.180353164672852, 6.180337905883789, 3.5207619667053223]
FAST_ADV_DELTA_255_2_31_31 = [-4.1043877601623535, 6.18034029006958, -6.180337905883789, 3.1147537231445312]
FAST_ADV_DELTA_255_1_9_17 = [6.180337905883789, -6.180337905883789, -6.180337905883789, 6.180337905883789]


def test_fast_adversarial_step_matches_puzzlemix_main(monkeypatch):
    """FastAdversarial.perturb (adv.p, eps 10, step null = eps + 2, scale uniform) with the
    reference's random start and scale, the loss being the eval-mode cross-entropy as in main.py:
    the perturbed batch."""
    images, labels, unit, _, model = adversarial_setup()
    fix_adversarial_draws(monkeypatch, unit)
    out = FastAdversarial(p=1.0, eps=10.0).perturb(model.eval(), images, lambda z: F.cross_entropy(z, labels))
    monkeypatch.undo()
    delta = (out - images) * 255
    close(out.sum((1, 2, 3)), FAST_ADV_SUMS)
    close(delta.abs().sum((1, 2, 3)), FAST_ADV_ABS_DELTA_SUMS_255)
    close(delta[:, 0, 0, 0], FAST_ADV_DELTA_255_0_0_0, atol=1e-4)
    close(delta[:, 2, 31, 31], FAST_ADV_DELTA_255_2_31_31, atol=1e-4)
    close(delta[:, 1, 9, 17], FAST_ADV_DELTA_255_1_9_17, atol=1e-4)


# snu-mllab/PuzzleMix e2dbf3a, main.py train() (the branch above, with adv_mask1/adv_mask2 fixed,
# saliency unary = sqrt(mean(grad^2)) at the noisy input) then mixup.py mixup_process (graph, n_labels
# 3, beta 1.2, gamma 0.5, eta 0.2, neigh_size 4, transport, t_eps 0.8, t_size 4) with
# np.random.randint -> log2(block_num), np.random.permutation -> [2, 3, 1, 0], np.random.beta -> 0.45;
# output un-normalised. Per case: per-image sums and the soft targets.
ADV_PUZZLEMIX_CASES = [
    # (adv_mask1, adv_mask2), block_num, sums, targets
    ((1, 1), 4, [1548.3487548828125, 1536.4105224609375, 1527.62939453125, 1558.3497314453125],
     [[0.5, 0.5, 0, 0, 0], [0, 0, 0.625, 0, 0.375], [0.5, 0, 0, 0, 0.5], [0, 0.5, 0.5, 0, 0]]),
    ((1, 0), 2, [1554.8367919921875, 1536.8460693359375, 1523.3505859375, 1553.389892578125],
     [[0.5, 0.5, 0, 0, 0], [0, 0, 0.625, 0, 0.375], [0.5, 0, 0, 0, 0.5], [0, 0.5, 0.5, 0, 0]]),
    ((0, 1), 8, [1539.69091796875, 1534.0244140625, 1534.59912109375, 1556.535888671875],
     [[0.5, 0.5, 0, 0, 0], [0, 0, 0.6328125, 0, 0.3671875], [0.5, 0, 0, 0, 0.5], [0, 0.6875, 0.3125, 0, 0]]),
    ((0, 0), 4, [1546.1787109375, 1534.9501953125, 1530.3203125, 1552.4256591796875],
     [[0.5, 0.5, 0, 0, 0], [0, 0, 0.625, 0, 0.375], [0.5, 0, 0, 0, 0.5], [0, 0.5, 0.5, 0, 0]]),
]  # fmt: skip


@pytest.mark.parametrize(("sides", "block_num", "sums", "targets"), ADV_PUZZLEMIX_CASES)
def test_adversarial_puzzlemix_matches_main_and_mixup_process(monkeypatch, sides, block_num, sums, targets):
    """aug=puzzlemix with aug.adv_p (CIFAR-100 settings, clean_lam 0) end to end: the saliency pass
    at the noisy input, the noise added to the chosen sources, the mixed images and soft targets,
    with the reference's coins, random start, scale, partners, lam and block count."""
    images, _, unit, onehot, model = adversarial_setup()
    adv_p = 0.5 if any(sides) else 0.0
    aug = create_aug(
        {"name": "puzzlemix", "alpha": 1.0, "adv_p": adv_p, "adv_eps": 10.0, "neigh_size": 4,
         "smoothness_input": "pixels", "t_size": 4, "clean_lam": 0.0},
        AugContext(num_classes=5, dataset_name="cifar100"),
    )  # fmt: skip
    fix_adversarial_draws(monkeypatch, unit, coins=[0.1 if s else 0.9 for s in sides])
    monkeypatch.setattr(torch, "randperm", lambda n, *a, **k: torch.tensor([2, 3, 1, 0]))
    monkeypatch.setattr(
        torch, "randint", lambda low, high, size, *a, **k: torch.tensor(block_num.bit_length() - 1)
    )
    monkeypatch.setattr(torch.distributions.Beta, "sample", lambda self, *a: torch.tensor(0.45))
    out = aug.apply(images, onehot, torch.arange(4), model)
    monkeypatch.undo()
    close(out.inputs.sum((1, 2, 3)), sums)
    torch.testing.assert_close(out.targets, torch.tensor(targets))
    assert out.inputs.min() >= 0 and out.inputs.max() <= 1
