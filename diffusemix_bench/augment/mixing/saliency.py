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


def _gray(images: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) RGB -> (N, 1, H, W) luma."""
    weights = images.new_tensor(_LUMA).view(1, 3, 1, 1)
    return (images * weights).sum(1, keepdim=True)


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
    image) without the centre pixel, via the integral image (``StaticSaliencyFineGrained::getMean``)."""
    n, _, height, width = gray.shape
    # With float64 gray levels every window sum is exact (OpenCV's float32 integral rounds above 2**24).
    integral = F.pad(gray[:, 0].cumsum(1).cumsum(2), (1, 0, 1, 0))
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
    return ((total - gray[:, 0]) / (count - 1)).view(n, 1, height, width)


def fine_grained_saliency(images: torch.Tensor) -> torch.Tensor:
    """Fine-grained saliency (Montabone & Soto, 2010) as OpenCV's
    ``saliency.StaticSaliencyFineGrained`` computes it (opencv_contrib
    ``staticSaliencyFineGrained.cpp``), the detector SaliencyMix uses: an 8-bit gray image blurred
    twice with the 3x3 kernel [1, 2, 1] / 4, on- and off-centre differences to the surround mean at
    six scales, each summed over scales and scaled to 255, then added and scaled to 255.

    The 8-bit steps are kept (rounding of the blurs, truncation of the differences); where OpenCV's
    last cast can exceed 255 the value saturates. ``images``: (N, 3, H, W) in [0, 1]; returns
    (N, H, W) maps in [0, 1].
    """
    # float64 throughout: exact 8-bit steps, and untouched by autocast (bf16 would round them).
    gray = (_gray(images.double()) * 255).round()
    binomial = torch.tensor([0.25, 0.5, 0.25])
    for _ in range(2):
        gray = _filter_separable(gray, binomial).round()
    on = torch.zeros_like(gray)
    off = torch.zeros_like(gray)
    for half in _FINE_GRAINED_SCALES:
        surround = _box_means_excluding_centre(gray, half)
        on += (gray - surround).clamp_min(0).floor()
        off += (surround - gray).clamp_min(0).floor()

    def scale_to_255(x: torch.Tensor, peak: torch.Tensor) -> torch.Tensor:
        return (255.0 * x / peak.clamp_min(1)).floor()

    on = scale_to_255(on, on.amax(dim=(-2, -1), keepdim=True))
    off = scale_to_255(off, off.amax(dim=(-2, -1), keepdim=True))
    peak = torch.maximum(on.amax(dim=(-2, -1), keepdim=True), off.amax(dim=(-2, -1), keepdim=True))
    return (scale_to_255(on + off, peak).clamp_max(255) / 255.0)[:, 0].to(images.dtype)


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
