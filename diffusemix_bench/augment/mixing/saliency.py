"""Saliency for the saliency-guided mixing baselines, in torch on the device: OpenCV's static
saliency detectors (fine-grained and spectral residual) and class activation maps of the model."""

from __future__ import annotations

import weakref

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from ...models.classifier import ImageClassifier
from ...models.preact_resnet import PreActResNet

# ITU-R BT.601 luma, the weights of OpenCV's RGB/BGR-to-gray conversion.
_LUMA = (0.299, 0.587, 0.114)
# The same weights as OpenCV's 8-bit conversion holds them: 15-bit fixed point summing to 2**15
# (imgproc/src/color.simd_helpers.hpp RY15, GY15, BY15; color_rgb.simd.hpp RGB2Gray<uchar>).
_LUMA_Q15 = (9798, 19235, 3735)


def _gray(images: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) RGB -> (N, 1, H, W) luma."""
    weights = images.new_tensor(_LUMA).view(1, 3, 1, 1)
    return (images * weights).sum(1, keepdim=True)


def _gray_8bit(images: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) RGB in [0, 1] -> (N, 1, H, W) float64 gray levels 0..255 as OpenCV's
    ``cvtColor(COLOR_RGB2GRAY)`` computes them from the 8-bit image:
    ``(R * 9798 + G * 19235 + B * 3735 + 2**14) >> 15``. Each channel is first rounded to its
    8-bit level (exact for images that were uint8 / 255)."""
    levels = (images.double() * 255).round().clamp(0, 255)
    weights = levels.new_tensor(_LUMA_Q15).view(1, 3, 1, 1)
    return ((levels * weights).sum(1, keepdim=True) + 2**14).div(2**15).floor()


def _filter_separable(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Correlate (N, 1, H, W) maps with ``kernel`` along both axes; OpenCV's default border
    (BORDER_REFLECT_101) is torch's ``reflect`` padding."""
    k = kernel.to(x).flatten()
    r = k.numel() // 2
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="reflect"), k.view(1, 1, 1, -1))
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1))


def _gaussian_kernel(size: int, sigma: float) -> torch.Tensor:
    """OpenCV ``getGaussianKernel`` for sigma > 0."""
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    k = torch.exp(-(x**2) / (2 * sigma**2))
    return k / k.sum()


def spectral_residual_saliency(images: torch.Tensor) -> torch.Tensor:
    """Spectral-residual saliency (Hou & Zhang, CVPR 2007) as OpenCV's
    ``saliency.StaticSaliencySpectralResidual`` computes it (opencv_contrib
    ``staticSaliencySpectralResidual.cpp``): gray image resized to 64x64, log amplitude minus its
    3x3 mean, back to the image domain with the original phase, squared magnitude after a 5x5
    Gaussian (sigma 8), scaled to max 1 and resized back.

    ``images``: (N, 3, H, W) in [0, 1]; returns (N, H, W) maps in [0, 1].
    """
    height, width = images.shape[-2:]
    small = F.interpolate(_gray(images), size=(64, 64), mode="bilinear", align_corners=False)
    spectrum = torch.fft.fft2(small.double())
    amplitude = spectrum.abs()
    # log(0) only for an exactly zero frequency; the clamp keeps it finite as OpenCV's log does.
    log_amplitude = amplitude.clamp_min(torch.finfo(torch.float64).tiny).log()
    residual = log_amplitude - _filter_separable(log_amplitude, torch.full((3,), 1.0 / 3))
    # OpenCV's inverse DFT is unscaled; the final max-normalisation removes the difference.
    saliency = torch.fft.ifft2(torch.polar(residual.exp(), spectrum.angle())).abs()
    saliency = _filter_separable(saliency, _gaussian_kernel(5, 8.0)) ** 2
    saliency = saliency / saliency.amax(dim=(-2, -1), keepdim=True).clamp_min(1e-300)
    out = F.interpolate(saliency.float(), size=(height, width), mode="bilinear", align_corners=False)
    return out[:, 0]


# Half-widths of the six centre-surround neighbourhoods of OpenCV's fine-grained saliency.
_FINE_GRAINED_SCALES = (12, 24, 48, 28, 56, 112)


def _box_means_excluding_centre(gray: torch.Tensor, half: int) -> torch.Tensor:
    """Mean of the window ``[y - half + 1, y + half] x [x - half + 1, x + half]`` (clipped to the
    image) without the centre pixel, via the integral image (``StaticSaliencyFineGrained::getMean``),
    in OpenCV's float32 arithmetic and order: ``((I[y2, x2] + I[y1, x1]) - I[y2, x1]) - I[y1, x2]``,
    minus the centre, divided by the count. The float32 integral is exact while 255 * H * W < 2**24
    (up to 256 x 256 pixels; above, OpenCV's float32 running sums may round differently); the
    corner sums round as OpenCV's do."""
    n, _, height, width = gray.shape
    integral = F.pad(gray[:, 0].cumsum(1).cumsum(2), (1, 0, 1, 0)).float()
    ys = torch.arange(height, device=gray.device)
    xs = torch.arange(width, device=gray.device)
    y1, y2 = (ys - half + 1).clamp(0, height), (ys + half + 1).clamp(0, height)
    x1, x2 = (xs - half + 1).clamp(0, width), (xs + half + 1).clamp(0, width)
    total = (
        integral[:, y2][:, :, x2]
        + integral[:, y1][:, :, x1]
        - integral[:, y2][:, :, x1]
        - integral[:, y1][:, :, x2]
    )
    count = (y2 - y1).view(-1, 1) * (x2 - x1).view(1, -1)
    return ((total - gray[:, 0].float()) / (count - 1).float()).view(n, 1, height, width)


def fine_grained_saliency(images: torch.Tensor) -> torch.Tensor:
    """Fine-grained saliency (Montabone & Soto, 2010) as OpenCV's
    ``saliency.StaticSaliencyFineGrained`` computes it (opencv_contrib
    ``staticSaliencyFineGrained.cpp``), the detector SaliencyMix uses: an 8-bit gray image blurred
    twice with the 3x3 kernel [1, 2, 1] / 4, on- and off-centre differences to the surround mean at
    six scales, each summed over scales and scaled to 255, then added and scaled to 255.

    The 8-bit steps are kept bit for bit: OpenCV's fixed-point gray conversion of the 8-bit image,
    blurs rounded half up (``GaussianBlur``'s fixed point, ``(v + 2**15) >> 16``), float32 surround
    means, truncation of the differences, the float32 quotient of the scale mixing, and the last
    ``(uchar)`` cast, which wraps modulo 256 where the value exceeds 255 (as OpenCV's x86-64 and
    AArch64 builds do). ``images``: (N, 3, H, W) RGB in [0, 1]; returns (N, H, W) maps in [0, 1].

    Checked against ``cv2.saliency.StaticSaliencyFineGrained`` (OpenCV 4.5.5 and 5.0) on 8-bit
    images: identical maps, so identical peaks. Where the references differ: SaliencyMix's and
    GuidedMixup's code hand OpenCV the *normalised float* RGB tensor, which its BGR conversion reads
    with red and blue swapped and whose float grey values its 8-bit steps then misread; that map
    carries little of the image, so this detector works on the 8-bit image the batch came from, with
    the RGB luma weights, as OpenCV computes it for an 8-bit image.
    """
    # float64 for the integer steps: exact, and untouched by autocast (bf16 would round them).
    gray = _gray_8bit(images)
    binomial = torch.tensor([0.25, 0.5, 0.25])
    for _ in range(2):
        gray = (_filter_separable(gray, binomial) + 0.5).floor()
    on = torch.zeros_like(gray)
    off = torch.zeros_like(gray)
    for half in _FINE_GRAINED_SCALES:
        surround = _box_means_excluding_centre(gray, half)  # float32, as OpenCV's getMean
        on += (gray.float() - surround).clamp_min(0).trunc().double()
        off += (surround - gray.float()).clamp_min(0).trunc().double()

    def mix_scales(x: torch.Tensor) -> torch.Tensor:  # (uchar)(255. * (float)(x / (float)max))
        peak = x.amax(dim=(-2, -1), keepdim=True).clamp_min(1)
        return (255.0 * (x.float() / peak.float()).double()).floor()

    on, off = mix_scales(on), mix_scales(off)
    peak = torch.maximum(on.amax(dim=(-2, -1), keepdim=True), off.amax(dim=(-2, -1), keepdim=True))
    mixed = (255.0 * (on + off) / peak.clamp_min(1)).floor().remainder(256)
    # convertTo(CV_32F, 1.0f / 255.0f): a float32 product.
    return (mixed[:, 0].float() * torch.tensor(1 / 255, dtype=torch.float32)).to(images.dtype)


SALIENCY_DETECTORS = {"fine_grained": fine_grained_saliency, "spectral_residual": spectral_residual_saliency}


def _unsupported(arch: str, why: str) -> NotImplementedError:
    return NotImplementedError(
        f"class activation maps need the last convolutional feature map followed by global average "
        f"pooling and one linear classifier; model '{arch}' {why}. CAM-based mixing (aug=snapmix) works "
        "with model=preactresnet18, resnet18, resnet50 and timm CNNs whose head is pool + linear "
        "(e.g. model=timm model.name=resnet50)"
    )


# Backbones whose timm head was checked to be average pooling + linear (checked once per model).
_CHECKED_HEADS: weakref.WeakSet = weakref.WeakSet()


@torch.no_grad()
def _timm_head_is_pool_linear(net: nn.Module, features: torch.Tensor, classifier: nn.Linear) -> bool:
    """Compare timm's ``forward_head`` with ``classifier(mean over positions)`` on one sample, with
    dropout off (each module's training flag is restored afterwards)."""
    modes = {m: m.training for m in net.modules()}
    net.eval()
    try:
        expected = net.forward_head(features[:1])
    finally:
        for module, mode in modes.items():
            module.training = mode
    got = classifier(features[:1].mean(dim=(2, 3)))
    return expected.shape == got.shape and torch.allclose(expected, got, rtol=1e-4, atol=1e-4)


def feature_maps_and_classifier(
    model: ImageClassifier, images: torch.Tensor
) -> tuple[torch.Tensor, nn.Linear]:
    """The feature map that the classifier's global average pooling reads, and that classifier."""
    net = model.backbone
    if isinstance(net, PreActResNet):
        features = model.forward_stages(images)
        if net.bn is not None:
            features = F.relu(net.bn(features))
        return features, net.linear
    if isinstance(net, torchvision.models.ResNet):
        x = net.maxpool(net.relu(net.bn1(net.conv1(model.normalize(images)))))
        return net.layer4(net.layer3(net.layer2(net.layer1(x)))), net.fc
    if hasattr(net, "forward_features") and hasattr(net, "get_classifier"):
        features = net.forward_features(model.normalize(images))
        classifier = net.get_classifier()
        if features.dim() != 4 or not isinstance(classifier, nn.Linear):
            raise _unsupported(model.arch, "has no (N, C, H, W) feature map before a linear classifier")
        if features.shape[1] != classifier.in_features:
            # A layer between pooling and the classifier (MobileNetV3's conv_head, say).
            raise _unsupported(
                model.arch,
                f"has layers between its {features.shape[1]}-channel feature map and its classifier "
                f"(which takes {classifier.in_features})",
            )
        if net not in _CHECKED_HEADS:
            if not _timm_head_is_pool_linear(net, features, classifier):
                raise _unsupported(model.arch, "has more than average pooling + linear in its head")
            _CHECKED_HEADS.add(net)
        return features, classifier
    raise _unsupported(model.arch, f"is a {type(net).__name__}, which has no known feature/classifier split")


@torch.no_grad()
def class_activation_maps(model: nn.Module, images: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """CAM of each image for its class (Zhou et al. 2016) as SnapMix's ``get_spm`` computes it:
    ``w_c . relu(f(p)) + b_c`` over the last feature map, upsampled bilinearly to the image size.

    ``model`` is an ImageClassifier (or a ``torch.compile`` of one) run in its current mode;
    returns (N, H, W) maps, not normalised.
    """
    model = getattr(model, "_orig_mod", model)
    if not isinstance(model, ImageClassifier):
        raise _unsupported(type(model).__name__, "is not an ImageClassifier")
    features, classifier = feature_maps_and_classifier(model, images)
    features = F.relu(features)
    weight = classifier.weight[classes]
    cams = torch.einsum("nchw,nc->nhw", features, weight.to(features.dtype))
    if classifier.bias is not None:
        cams = cams + classifier.bias[classes].view(-1, 1, 1)
    size = images.shape[-2:]
    return F.interpolate(cams[:, None].float(), size=size, mode="bilinear", align_corners=False)[:, 0]


def peak_position(saliency: torch.Tensor) -> tuple[int, int]:
    """(row, column) of the first maximum of one (H, W) map, as ``np.argmax`` takes it."""
    index = int(saliency.flatten().argmax())
    width = saliency.shape[-1]
    return index // width, index % width
