"""Tests of the model registry, PreActResNet-18 stages, ImageClassifier and weight loading."""

from __future__ import annotations

import urllib.error
from pathlib import Path

import huggingface_hub.constants
import pytest
import torch
from safetensors.torch import save_file

from diffusemix_bench.errors import ConfigError
from diffusemix_bench.models import (
    ImageClassifier,
    PretrainedWeightsError,
    create_model,
    list_models,
    load_weights,
)

REAL_WEIGHTS = Path("/work/shared/data/weights/tf_efficientnet_lite0_in1k_timmkeys.safetensors")


def _image(size: int, n: int = 2) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize(
    ("name", "options", "size"),
    [
        ("preactresnet18", {"stem_stride": 1}, 32),
        ("preactresnet18", {"stem_stride": 2}, 64),
        ("preactresnet18", {"final_bn_relu": True}, 32),
        ("resnet18", {}, 32),
        ("resnet50", {}, 32),
        ("timm", {"name": "resnet10t"}, 32),
    ],
)
def test_forward_shape(name, options, size):
    model = create_model(name, 7, **options).eval()
    with torch.no_grad():
        assert model(_image(size)).shape == (2, 7)


def test_every_registered_model_is_covered():
    assert list_models() == ["preactresnet18", "resnet18", "resnet50", "timm"]


@pytest.mark.parametrize(("stem_stride", "size"), [(1, 32), (2, 64)])
def test_preactresnet18_layout(stem_stride, size):
    model = create_model("preactresnet18", 10, stem_stride=stem_stride)
    net = model.backbone
    assert (
        sum(p.numel() for p in net.parameters()) == 11_171_146
    )  # the benchmarks' PreActResNet-18 at 10 classes
    assert "shortcut.0.weight" in dict(net.layer2[0].named_parameters())
    with torch.no_grad():
        h = model.forward_stages(_image(size, 1), 0, 1)
    assert h.shape == (1, 64, 32, 32)  # stem keeps 32x32 in both settings: no max-pool


def test_forward_stages_compose_to_forward():
    model = create_model("preactresnet18", 10).eval()
    x = _image(32)
    with torch.no_grad():
        full = model(x)
        assert model.num_stages == 5
        torch.testing.assert_close(model.forward_stages(x, 0, 0), x)  # split 0 is pixel space
        for split in range(model.num_stages + 1):
            h = model.forward_stages(x, 0, split)
            out = model.forward_head(model.forward_stages(h, split))
            torch.testing.assert_close(out, full)


def test_stages_unavailable_names_the_fix():
    model = create_model("resnet18", 10)
    assert model.num_stages == 0
    with pytest.raises(NotImplementedError, match="model.name=preactresnet18"):
        model.forward_stages(_image(32))


def test_normalizer_math():
    mean, std = (0.1, 0.2, 0.3), (0.5, 0.25, 2.0)
    model = create_model("preactresnet18", 10, mean=mean, std=std).eval()
    x = _image(32)
    m = torch.tensor(mean).view(1, 3, 1, 1)
    s = torch.tensor(std).view(1, 3, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(model(x), model.backbone((x - m) / s))
    assert model.normalize.mean.shape == (1, 3, 1, 1)
    assert not any(k.startswith("normalize.") for k in model.state_dict())


def test_bad_normalizer_values():
    with pytest.raises(ValueError, match="3 values"):
        create_model("preactresnet18", 10, mean=(0.5,), std=(0.5,))


@pytest.mark.parametrize(
    ("name", "options", "head"),
    [
        ("preactresnet18", {}, ["backbone.linear."]),
        ("resnet18", {}, ["backbone.fc."]),
        ("timm", {"name": "resnet10t"}, ["backbone.fc."]),
        ("timm", {"name": "tf_efficientnet_lite0"}, ["backbone.classifier."]),
    ],
)
def test_head_backbone_split(name, options, head):
    model = create_model(name, 5, **options)
    assert model.head_names() == head
    head_ids = {id(p) for p in model.head_parameters()}
    body_ids = {id(p) for p in model.backbone_parameters()}
    all_ids = [id(p) for p in model.parameters()]
    assert not head_ids & body_ids
    assert sorted(head_ids | body_ids) == sorted(all_ids)
    assert len(head_ids) == 2  # weight and bias of the classifier
    assert all(p.shape[0] == 5 for p in model.head_parameters())


def test_registry_errors():
    with pytest.raises(ConfigError, match="preactresnet18, resnet18, resnet50, timm"):
        create_model("vgg11", 10)
    with pytest.raises(ConfigError, match=r"timm.list_models\('\*resnet\*'\)"):
        create_model("timm", 10, name="resnet10x")
    with pytest.raises(
        ConfigError,
        match="model.kwargs.stem_stride: model .resnet18. has no option .stem_stride. \\(it takes none\\)",
    ):
        create_model("resnet18", 10, stem_stride=2)
    with pytest.raises(ValueError, match="stem_stride"):
        create_model("preactresnet18", 10, stem_stride=4)


def _outputs(model: ImageClassifier, size: int = 32) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(_image(size))


def _trained(name: str = "preactresnet18", num_classes: int = 10) -> ImageClassifier:
    """A model whose BN statistics differ from a fresh one, so a round trip that skips buffers fails."""
    model = create_model(name, num_classes).train()
    with torch.no_grad():
        model(_image(32, 4))
    return model.eval()


@pytest.fixture(scope="module")
def source() -> ImageClassifier:
    """One trained PreActResNet-18 (10 classes) that the weight tests save and never change."""
    return _trained()


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
@pytest.mark.parametrize("whole", [False, True])
def test_weights_round_trip(tmp_path, source, suffix, whole):
    state = (source if whole else source.backbone).state_dict()
    path = tmp_path / f"w{suffix}"
    if suffix == ".safetensors":
        save_file({k: v.contiguous() for k, v in state.items()}, path)
    else:
        torch.save(state, path)
    target = create_model("preactresnet18", 10)
    report = load_weights(target, path)
    assert report["loaded"] == len(source.backbone.state_dict())
    assert report["dropped_head"] == [] and report["ignored"] == []
    assert report["prefix"] == ("backbone." if whole else "")
    torch.testing.assert_close(_outputs(target), _outputs(source))


def test_create_model_loads_weights_file(tmp_path, source):
    path = tmp_path / "w.pt"
    torch.save(source.state_dict(), path)
    target = create_model("preactresnet18", 10, weights=path)
    torch.testing.assert_close(_outputs(target), _outputs(source))


def test_lightning_checkpoint(tmp_path, source):
    state = {f"model.{k}": v for k, v in source.state_dict().items()}
    state["criterion.weight"] = torch.ones(10)  # another module of the LightningModule
    checkpoint = {
        "epoch": 3,
        "global_step": 120,
        "pytorch-lightning_version": "2.4.0",
        "state_dict": state,
        "optimizer_states": [{"state": {}, "param_groups": [{"lr": 0.1, "params": [0, 1]}]}],
        "hyper_parameters": {"lr": 0.1, "name": "preactresnet18"},
    }
    path = tmp_path / "last.ckpt"
    torch.save(checkpoint, path)
    target = create_model("preactresnet18", 10)
    report = load_weights(target, path)
    assert report["prefix"] == "model.backbone."
    assert report["ignored"] == ["criterion.weight"]
    torch.testing.assert_close(_outputs(target), _outputs(source))


def test_ddp_module_prefix_and_model_key(tmp_path, source):
    path = tmp_path / "ddp.pth"
    torch.save({"model": {f"module.{k}": v for k, v in source.backbone.state_dict().items()}}, path)
    target = create_model("preactresnet18", 10)
    load_weights(target, path)
    torch.testing.assert_close(_outputs(target), _outputs(source))


def test_weights_in_the_forms_other_tools_save_them_load(tmp_path, source):
    """A compiled model held by a LightningModule (``model._orig_mod.backbone.``: a run of this
    framework with model.compile=true), PyTorch's tutorial checkpoint (``model_state_dict`` beside
    the epoch and the optimiser's state), and a safetensors file named .bin or a torch file named
    .safetensors (read as what their bytes are) all load."""
    state = source.backbone.state_dict()
    forms = {
        "compiled.ckpt": lambda p: torch.save({"state_dict": {f"model._orig_mod.backbone.{k}": v for k, v in state.items()}}, p),
        "tutorial.pt": lambda p: torch.save({"epoch": 3, "model_state_dict": state, "optimizer_state_dict": {}, "loss": 0.5}, p),
        "named.bin": lambda p: save_file(state, p),
        "torch.safetensors": lambda p: torch.save(state, p),
    }  # fmt: skip
    for name, write in forms.items():
        write(tmp_path / name)
        target = create_model("preactresnet18", 10)
        load_weights(target, tmp_path / name)
        torch.testing.assert_close(_outputs(target), _outputs(source), msg=name)


def test_weight_files_that_cannot_be_used_say_why_and_the_fix(tmp_path, source):
    from omegaconf import OmegaConf

    from diffusemix_bench.config import check_weights_there
    from diffusemix_bench.models.weights import WeightsFileError

    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(
        WeightsFileError, match=r"empty\.pt is empty \(0 bytes: a copy or download cut short\?\)"
    ):
        load_weights(create_model("preactresnet18", 10), tmp_path / "empty.pt")
    torch.save({"epoch": 3, "weights": [1, 2]}, tmp_path / "other.pt")
    with pytest.raises(
        WeightsFileError, match=r"are not tensors: \['epoch', 'weights'\]; re-save the model's own"
    ):
        load_weights(create_model("preactresnet18", 10), tmp_path / "other.pt")
    torch.save({}, tmp_path / "nothing.pt")
    with pytest.raises(WeightsFileError, match=r"got an empty dict; re-save the model's state dict"):
        load_weights(create_model("preactresnet18", 10), tmp_path / "nothing.pt")
    (tmp_path / "folder").mkdir()
    cfg = OmegaConf.create({"model": {"weights": str(tmp_path / "folder")}})
    with pytest.raises(ConfigError, match=r"folder is a folder; set model.weights=<the weight file in it>"):
        check_weights_there(cfg)


def test_head_mismatch_dropped_and_reported(tmp_path):
    source = _trained(num_classes=1000)
    path = tmp_path / "in1k.safetensors"
    save_file(source.backbone.state_dict(), path)
    target = create_model("preactresnet18", 102)
    head_before = target.backbone.linear.weight.clone()
    report = load_weights(target, path)
    assert report["dropped_head"] == ["linear.bias", "linear.weight"]
    assert report["loaded"] == len(source.backbone.state_dict()) - 2
    torch.testing.assert_close(target.backbone.linear.weight, head_before)
    torch.testing.assert_close(target.backbone.conv1.weight, source.backbone.conv1.weight)
    with pytest.raises(ValueError, match="another class count"):
        load_weights(create_model("preactresnet18", 102), path, strict_head=True)


def test_headless_file_keeps_fresh_head(tmp_path, source):
    state = {k: v for k, v in source.backbone.state_dict().items() if not k.startswith("linear.")}
    path = tmp_path / "features.pt"
    torch.save(state, path)
    report = load_weights(create_model("preactresnet18", 10), path)
    assert report["missing_head"] == ["linear.bias", "linear.weight"]


def test_other_architecture_raises_clear_error(tmp_path, source):
    path = tmp_path / "plain.pt"
    torch.save(source.backbone.state_dict(), path)
    with pytest.raises(
        ValueError,
        match=r"does not fit model 'preactresnet18'.*4 missing \(bn\.weight, bn\.bias, bn\.running_mean",
    ):
        load_weights(create_model("preactresnet18", 10, final_bn_relu=True), path)
    with pytest.raises(ValueError, match=r"no key fits model 'resnet18'|does not fit model 'resnet18'"):
        load_weights(create_model("resnet18", 10), path)


def test_misshaped_backbone_key_raises(tmp_path, source):
    state = dict(source.backbone.state_dict())
    state["conv1.weight"] = torch.zeros(64, 3, 5, 5)
    path = tmp_path / "bad.safetensors"
    save_file(state, path)
    with pytest.raises(ValueError, match=r"1 with other shapes \(conv1\.weight: file \(64, 3, 5, 5\)"):
        load_weights(create_model("preactresnet18", 10), path)


class _NotATensor:
    pass


def test_pickle_with_objects_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"conv1.weight": torch.zeros(1), "extra": _NotATensor()}, path)
    with pytest.raises(ValueError, match=r"weights_only=True.*model.weights=") as info:
        load_weights(create_model("preactresnet18", 10), path)
    assert "_NotATensor" in str(info.value)


@pytest.mark.parametrize(
    ("name", "junk"),
    [
        ("junk.pt", b"not a weight file"),
        ("junk.pt", bytes(range(256)) * 4),  # (the unpickler stops on an opcode it does not know)
        ("junk.pt", b"PK\x03\x04" + b"\0" * 60),  # a cut-off zip: torch's own format
        ("junk.safetensors", b"not a weight file"),
    ],
    ids=["text", "bytes", "cut-off-zip", "safetensors"],
)
def test_unreadable_file(tmp_path, name, junk):
    """A file that is no weight file is named, with what model.weights takes instead."""
    path = tmp_path / name
    path.write_bytes(junk)
    with pytest.raises(ValueError, match=name.replace(".", r"\.") + r" is not a readable .* file \(") as info:
        load_weights(create_model("preactresnet18", 10), path)
    assert str(info.value).endswith(
        "; give model.weights a file written by torch.save or safetensors' save_file"
    )


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.pt.*model\.weights"):
        load_weights(create_model("preactresnet18", 10), tmp_path / "nope.pt")


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """No network and empty caches: the hub answers from its (empty) cache, torch hub downloads fail."""

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "torch"))
    return tmp_path


def test_pretrained_offline_torchvision(offline):
    with pytest.raises(PretrainedWeightsError) as info:
        create_model("resnet18", 10, pretrained=True)
    message = str(info.value)
    assert "ResNet18_Weights.IMAGENET1K_V1" in message
    assert str(offline / "torch" / "checkpoints") in message
    assert "model.weights=<file>" in message and "model.pretrained=false" in message
    # The failed download left no empty cache folder behind.
    assert not (offline / "torch").exists()


def test_pretrained_offline_timm(offline):
    with pytest.raises(PretrainedWeightsError) as info:
        create_model("timm", 10, pretrained=True, name="resnet10t")
    message = str(info.value)
    assert "resnet10t" in message and str(offline / "hf") in message and "model.weights=<file>" in message
    assert not (offline / "torch").exists() and not (offline / "hf").exists()


def test_pretrained_torchvision_from_cache_gets_fresh_head(offline):
    published = create_model("resnet18", 1000).backbone.state_dict()
    cache = offline / "torch" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(published, cache / "resnet18-f37072fd.pth")  # the file name torchvision looks for
    model = create_model("resnet18", 10, pretrained=True)
    torch.testing.assert_close(model.backbone.conv1.weight, published["conv1.weight"])
    assert model.backbone.fc.out_features == 10
    assert model.pretrained_mean_std == ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def test_published_weights_in_the_cache_are_not_fetched_again(offline, monkeypatch):
    """fetch_pretrained (a run's or sweep's check before it starts) builds nothing where torch hub's
    cache holds the torchvision file; without it, it builds the model once (the download's error
    is the run's refusal)."""
    from diffusemix_bench.models.factory import pretrained_cached
    from diffusemix_bench.training import classifier
    from tests.conftest import compose_config

    cfg = compose_config(["model=resnet18", "model.pretrained=true"])
    built = []
    monkeypatch.setattr(classifier, "build_model", lambda *a, **k: built.append(a))
    assert not pretrained_cached("resnet18") and not pretrained_cached("timm", "resnet10t")
    classifier.fetch_pretrained(cfg)
    assert len(built) == 1
    cache = offline / "torch" / "checkpoints"
    cache.mkdir(parents=True)
    (cache / "resnet18-f37072fd.pth").write_bytes(b"")
    assert pretrained_cached("resnet18")
    classifier.fetch_pretrained(cfg)
    assert len(built) == 1


class _RunsCode:
    """A pickle that calls a function when unpickled in full (torch.load(weights_only=False))."""

    def __reduce__(self):
        return (exec, ("import pathlib, os; pathlib.Path(os.environ['EXPLOITED']).write_text('ran')",))


def test_pretrained_torchvision_cache_file_is_read_as_tensors_only(offline, monkeypatch):
    """torchvision's build(weights=...) unpickles the cached file in full (torch.load with
    weights_only=False): a file put in the cache (as the offline message advises) could run code.
    It is read as tensors only: a hostile or damaged file is one message naming it."""
    cache = offline / "torch" / "checkpoints"
    cache.mkdir(parents=True)
    target = cache / "resnet18-f37072fd.pth"
    exploited = offline / "exploited"
    monkeypatch.setenv("EXPLOITED", str(exploited))
    torch.save({"conv1.weight": _RunsCode()}, target)
    with pytest.raises(
        PretrainedWeightsError, match=r"resnet18-f37072fd\.pth is not the weight file .*delete it"
    ) as refused:
        create_model("resnet18", 10, pretrained=True)
    # torch's reason alone, whole: not its advice to load the file with weights_only=False
    assert "weights_only set to False" not in str(refused.value) and "Unsupported global" in str(
        refused.value
    )
    assert not exploited.exists()
    target.write_bytes(b"PK\x03\x04 cut short")
    with pytest.raises(
        PretrainedWeightsError, match=r"is not the weight file ResNet18_Weights.IMAGENET1K_V1"
    ):
        create_model("resnet18", 10, pretrained=True)
    torch.save({"conv1.weight": torch.zeros(1)}, target)  # tensors, but not ResNet-18's
    with pytest.raises(PretrainedWeightsError, match=r"does not hold the tensors of ResNet18_Weights"):
        create_model("resnet18", 10, pretrained=True)


def test_pretrained_timm_from_hub_cache_gets_fresh_head(offline):
    published = create_model("timm", 1000, name="resnet10t").backbone.state_dict()
    repo = offline / "hf" / "models--timm--resnet10t.c3_in1k"
    commit = "0" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "snapshots" / commit).mkdir(parents=True)
    from diffusemix_bench.models.factory import pretrained_cached

    assert not pretrained_cached("timm", "resnet10t")
    save_file(published, repo / "snapshots" / commit / "model.safetensors")
    assert pretrained_cached("timm", "resnet10t")  # (a run's check before it starts builds nothing)
    model = create_model("timm", 10, pretrained=True, name="resnet10t")
    torch.testing.assert_close(model.backbone.conv1[0].weight, published["conv1.0.weight"])
    assert model.backbone.fc.out_features == 10
    # The cached file cut short: one message naming the cache and the fix (a SafetensorError's
    # traceback had come from timm).
    cached = repo / "snapshots" / commit / "model.safetensors"
    cached.write_bytes(cached.read_bytes()[:1000])
    with pytest.raises(
        PretrainedWeightsError,
        match=r"the cached pretrained weights of timm 'resnet10t' \(under .*models--timm--resnet10t\.c3_in1k\) "
        r"cannot be read \(.*\): delete that folder's copy",
    ):
        create_model("timm", 10, pretrained=True, name="resnet10t")


def test_pretrained_unavailable_for_preactresnet18():
    with pytest.raises(PretrainedWeightsError, match="model.pretrained=false"):
        create_model("preactresnet18", 10, pretrained=True)


def test_weights_file_replaces_download(tmp_path, offline):
    source = _trained("resnet18")
    path = tmp_path / "r18.pt"
    torch.save(source.backbone.state_dict(), path)
    target = create_model("resnet18", 10, pretrained=True, weights=path)
    torch.testing.assert_close(_outputs(target), _outputs(source))


@pytest.mark.skipif(not REAL_WEIGHTS.is_file(), reason=f"{REAL_WEIGHTS} not present")
def test_real_timm_weights():
    model = create_model("timm", 102, name="tf_efficientnet_lite0")
    assert model.pretrained_mean_std == ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    report = load_weights(model, REAL_WEIGHTS)
    assert report["dropped_head"] == ["classifier.bias", "classifier.weight"]
    assert report["loaded"] == 294 and report["ignored"] == [] and report["missing_head"] == []

    full = create_model("timm", 1000, name="tf_efficientnet_lite0")
    report = load_weights(full, REAL_WEIGHTS)
    assert report["loaded"] == 296 and report["dropped_head"] == []
    assert full(_image(64, 1)).shape == (1, 1000)


def test_a_model_built_for_another_input_size_is_named_before_training():
    """A timm vision transformer takes the size it was built for: another dataset.image_size is a
    ConfigError with both fixes (it failed at the first step with timm's assertion); built for the
    data's size, it runs."""
    from diffusemix_bench.errors import ConfigError
    from diffusemix_bench.training.classifier import build_model
    from tests.conftest import compose_config

    base = ["dataset=cifar100", "model=timm", "model.name=vit_tiny_patch16_224", "dataset.image_size=32"]
    with pytest.raises(ConfigError, match=r"takes 224 x 224 images.*\+model\.kwargs\.img_size=32"):
        build_model(compose_config(base), 100)
    model = build_model(compose_config([*base, "+model.kwargs.img_size=32"]), 100)
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 100)


def test_a_weights_file_brings_its_architectures_normalisation(tmp_path):
    """model.weights=<file> starts from weights trained with the architecture's published
    normalisation (EfficientNet-Lite: 0.5/0.5), as model.pretrained=true does; without weights the
    dataset's is used, and model.mean/std win over both."""
    from diffusemix_bench.training.classifier import build_model
    from tests.conftest import compose_config

    path = tmp_path / "lite0.safetensors"
    save_file(create_model("timm", 10, name="tf_efficientnet_lite0").backbone.state_dict(), path)
    base = ["dataset=cifar100", "model=timm", "model.name=tf_efficientnet_lite0", "dataset.image_size=32"]

    def mean_std(extra):
        normalize = build_model(compose_config([*base, *extra]), 100).normalize
        return normalize.mean.flatten().tolist(), normalize.std.flatten().tolist()

    assert mean_std([f"model.weights={path}"]) == ([0.5] * 3, [0.5] * 3)
    dataset = compose_config(base).dataset
    scratch = mean_std([])
    assert scratch[0] == pytest.approx(list(dataset.mean)) and scratch[1] == pytest.approx(list(dataset.std))
    assert mean_std([f"model.weights={path}", "model.mean=[0.1,0.2,0.3]", "model.std=[1,1,1]"])[0] == (
        pytest.approx([0.1, 0.2, 0.3])
    )


def test_the_normalisation_line_says_imagenets_statistics_are_not_the_datasets_own(caplog):
    """An image folder's default mean and std are ImageNet's: the log said "(the dataset's)", read
    as statistics of the user's own images; CIFAR-100's own are said as the dataset's settings."""
    from diffusemix_bench.training.classifier import build_model
    from tests.conftest import compose_config

    said = {}
    for dataset in ("imagefolder", "cifar100"):
        cfg = compose_config(
            [f"dataset={dataset}", "model=resnet18", "dataset.image_size=32", "dataset.root=/x"]
        )
        caplog.clear()
        with caplog.at_level("INFO", logger="diffusemix_bench.training.classifier"):
            build_model(cfg, 3)
        said[dataset] = next(r.getMessage() for r in caplog.records if "normalisation" in r.getMessage())
    assert said["imagefolder"].endswith("(dataset.mean/dataset.std: ImageNet's statistics)"), said
    assert said["cifar100"].endswith("(dataset.mean/dataset.std)"), said
    # model.mean given alone: the std is said to come from where it does.
    cfg = compose_config(
        ["dataset=cifar100", "model=resnet18", "dataset.image_size=32", "model.mean=[0.5,0.5,0.5]"]
    )
    caplog.clear()
    with caplog.at_level("INFO", logger="diffusemix_bench.training.classifier"):
        build_model(cfg, 3)
    line = next(r.getMessage() for r in caplog.records if "normalisation" in r.getMessage())
    assert line.endswith("(model.mean; the std: dataset.mean/dataset.std)"), line


def test_a_misspelt_timm_family_is_answered_with_a_listing_that_lists_models():
    """model.name=resnt18: the close names, and a timm.list_models pattern that matches some (the
    typo's own, '*resnt*', matched none); a name close to nothing gets the whole listing."""
    import timm

    from diffusemix_bench.errors import ConfigError
    from diffusemix_bench.models.factory import check_timm_model

    said = {}
    for name in ("resnt18", "qqqzzz"):
        with pytest.raises(ConfigError) as refused:
            check_timm_model(name, False)
        said[name] = str(refused.value)
    assert "close names: resnet18" in said["resnt18"]
    assert "timm.list_models('*resnet*')" in said["resnt18"] and timm.list_models("*resnet*")
    assert "list the choices with timm.list_models() and" in said["qqqzzz"]


def test_the_hub_is_put_offline_only_where_its_host_cannot_be_named(monkeypatch):
    """A pretrained timm model where the hub's host does not resolve (no network): its client is in
    offline mode for the download (cached weights load at once; missing ones fail at once, where
    each request was retried for about a minute), and as it was afterwards; where it resolves, or
    for a model without pretrained weights, untouched."""
    import socket

    from diffusemix_bench.models.factory import _hub_offline_where_unreachable

    asked = []

    def unresolved(host, *args, **kwargs):
        asked.append(host)
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(socket, "getaddrinfo", unresolved)
    with _hub_offline_where_unreachable(pretrained=True):
        assert huggingface_hub.constants.HF_HUB_OFFLINE is True
    assert huggingface_hub.constants.HF_HUB_OFFLINE is False and asked == ["huggingface.co"]
    with _hub_offline_where_unreachable(pretrained=False):
        assert huggingface_hub.constants.HF_HUB_OFFLINE is False
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: [])
    with _hub_offline_where_unreachable(pretrained=True):
        assert huggingface_hub.constants.HF_HUB_OFFLINE is False
