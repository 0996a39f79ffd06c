"""Edit generation: prompts, the edit store, per-sample seeds, generate.py, retries, missing weights."""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf, open_dict

from diffusemix_bench.commands import script_command
from diffusemix_bench.errors import ConfigError
from diffusemix_bench.generation import edit_model as em
from diffusemix_bench.generation import generate as gen_mod
from diffusemix_bench.generation.edit_model import EditModel, EditModelWeightsError, finish
from diffusemix_bench.generation.generate import generate, read_split
from diffusemix_bench.generation.prompts import PAPER_PROMPTS, build_prompts, prompt_id
from diffusemix_bench.generation.store import (
    CorruptEditError,
    EditStore,
    MissingEditError,
    edit_seed,
    generate_command,
    prompt_blocks,
    settings_hash,
)
from tests.conftest import CONF_DIR, ROOT, compose_config
from tests.fixtures.datasets import write_fixture_dataset


@pytest.fixture(autouse=True)
def one_thread():
    """The tiny pipeline's ops are too small to gain from threads, and on a shared machine
    spinning OpenMP threads cost far more than they give."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def compose_generate(overrides: list[str], return_hydra_config: bool = False):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("generate", overrides=overrides, return_hydra_config=return_hydra_config)


@pytest.fixture(scope="module")
def flowers(tmp_path_factory) -> Path:
    """A Flowers-102 fixture: 3 classes, 4 images per class per split, 40 x 48 px."""
    return write_fixture_dataset("flowers102", tmp_path_factory.mktemp("data"))["data_dir"]


def gen_overrides(data_dir: Path, edits: Path, *extra: str) -> list[str]:
    return [
        "dataset=flowers102",
        "generator=tiny",
        "debug=fast",
        f"paths.data_dir={data_dir}",
        f"generator.edits_dir={edits}",
        *extra,
    ]


# -- prompts -------------------------------------------------------------------------------------
def test_prompt_library_templates_counts_and_stable_ids():
    paper = build_prompts(PAPER_PROMPTS)
    assert len(paper) == 9
    assert paper[8].text == "A transformed version of image into a sketch with crayon"
    assert paper[8].id == "a-sketch-with-crayon"
    raw = build_prompts(PAPER_PROMPTS, "raw", num_prompts=3)
    assert [p.text for p in raw] == ["autumn", "snowy", "sunset"]
    # Ids depend on the prompt's text only: not on template, position or list length.
    assert [p.id for p in raw] == [p.id for p in paper[:3]]
    assert build_prompts(["mosaic", "autumn"])[1].id == paper[0].id
    # Different texts never share an id, even when their slugs agree.
    ids = {prompt_id(t) for t in ["ukiyo-e", "ukiyo e", "Ukiyo-E", "ukiyo  e"]}
    assert len(ids) == 4
    assert all(i.replace("-", "").replace("_", "").isalnum() for i in ids)
    with pytest.raises(ConfigError, match="num_prompts=10"):
        build_prompts(PAPER_PROMPTS, num_prompts=10)
    with pytest.raises(ConfigError, match="prompt_template"):
        build_prompts(PAPER_PROMPTS, "fancy")
    with pytest.raises(ConfigError, match=r"generator.prompts lists 'autumn' twice: give each prompt once"):
        build_prompts(["autumn", "autumn"])
    # Letters outside a-z alone have an id (they had been said to be no letters); punctuation has none.
    assert re.fullmatch(r"prompt_[0-9a-f]{8}", prompt_id("雪")) and prompt_id("雪") != prompt_id("雨")
    with pytest.raises(ConfigError, match="has no letters or digits"):
        prompt_id("!!!")
    # A long prompt's id fits a folder's name (a file system takes 255 bytes): shortened, with a
    # longer hash of the whole text; ids that fit stay as they were.
    long = " ".join(["a watercolor painting of a flower field at dawn"] * 6)
    assert len(long) > 255 and len(prompt_id(long)) == 255 and prompt_id(long) != prompt_id(long + "s")
    assert prompt_id(long[:200]) == long[:200].replace(" ", "-")


# -- the store API -------------------------------------------------------------------------------
def test_store_round_trip_missing_and_corrupt_file(tmp_path):
    cfg_overrides = ["dataset=flowers102", "generator=tiny", f"generator.edits_dir={tmp_path}"]
    cfg = compose_config(cfg_overrides)
    store = EditStore.from_config(cfg, "flowers102")
    assert store.folder.parent == tmp_path / "flowers102" / "train"
    assert store.prompt_ids[0] == "autumn" and len(store.prompt_ids) == 9
    assert store.prompt_texts["autumn"] == "A transformed version of image into autumn"
    assert store.missing([0, 1]) == [(i, p) for i in (0, 1) for p in store.prompt_ids]

    image = torch.randint(0, 256, (3, 17, 23), dtype=torch.uint8)
    store.write(1, "snowy", image)
    assert store.has(1, "snowy") and not store.has(0, "snowy") and not store.has(1, "autumn")
    assert torch.equal(store.read(1, "snowy"), image)
    assert (1, "snowy") not in store.missing([0, 1]) and len(store.missing([0, 1])) == 17
    assert (store.folder / "settings.json").exists()
    # A fresh object reads the manifest from disk; nothing is left in the scratch folder.
    store.close()
    again = EditStore.from_config(cfg, "flowers102")
    assert again.has(1, "snowy") and torch.equal(again.read(1, "snowy"), image)
    assert again.check() == {"duplicates": [], "without_image": [], "unrecorded_images": []}
    assert not any((store.folder / "tmp").iterdir())

    with pytest.raises(MissingEditError, match="python generate.py dataset=flowers102"):
        again.read(0, "snowy")
    # Read straight into a slot of a stack: the same pixels; another shape is left to read().
    stack = torch.zeros(3, 3, 17, 23, dtype=torch.uint8)
    assert again.read_into(1, "snowy", stack[1]) and torch.equal(stack[1], image)
    assert not stack[0].any() and not stack[2].any()
    other = torch.zeros(3, 17, 22, dtype=torch.uint8)
    assert not again.read_into(1, "snowy", other) and not other.any()
    with pytest.raises(MissingEditError, match="python generate.py dataset=flowers102"):
        again.read_into(0, "snowy", stack[0])
    with pytest.raises(ValueError, match="uint8"):
        again.write(2, "snowy", image.float())
    good = store.path(1, "snowy").read_bytes()
    store.path(1, "snowy").write_bytes(good[: len(good) // 2])  # truncated after it was recorded
    with pytest.raises(
        CorruptEditError,
        match=r"1\.npy.*broken.*Repair the store.*: \S*python generate.py.*generator\.verify=true",
    ):
        again.read(1, "snowy")
    with pytest.raises(CorruptEditError, match=r"1\.npy.*broken.*Repair the store"):
        again.read_into(1, "snowy", torch.empty(3, 17, 23, dtype=torch.uint8))
    # The recorded size finds it without decoding: it counts as missing, named as broken.
    assert again.missing([1]) == [(1, p) for p in store.prompt_ids] and again.last_broken == [(1, "snowy")]
    # Damage that keeps the size is found by decoding (generator.verify=true).
    store.path(1, "snowy").write_bytes(good[:8] + b"\0" * (len(good) - 8))
    assert again.broken([1]) == [] and again.broken([1], verify=True) == [(1, "snowy")]
    # Garbage lines and absurd indices in a manifest are ignored, never crash a reader.
    (store.folder / "manifest" / "junk.txt").write_bytes(
        b"\xff\xfe\x00garbage\nsnowy 99999999999999999999 3\n snowy -4\n"
    )
    assert EditStore.from_config(cfg, "flowers102").has(1, "snowy")
    # A file deleted after being recorded counts as missing again.
    store.path(1, "snowy").unlink()
    assert (1, "snowy") in again.missing([1])

    # generator.store_format=png: another folder, PNG files, the same pixels back.
    png = EditStore.from_config(compose_config([*cfg_overrides, "generator.store_format=png"]), "flowers102")
    assert png.folder != store.folder and png.format == "png" and store.format == "npy"
    png.write(4, "snowy", image)
    assert png.path(4, "snowy").suffix == ".png" and torch.equal(png.read(4, "snowy"), image)
    assert store.path(4, "snowy").suffix == ".npy"
    # A byte changed inside a PNG's image data, its size kept: named as broken by the chunks'
    # checksums (libpng's own error, through torchvision's decoder, ended the process).
    data = bytearray(png.path(4, "snowy").read_bytes())
    data[len(data) // 2] ^= 0xFF
    png.path(4, "snowy").write_bytes(bytes(data))
    assert png.broken([4], verify=True) == [(4, "snowy")]
    with pytest.raises(CorruptEditError, match=r"4\.png.*broken.*Repair the store"):
        png.read(4, "snowy")


def test_store_folder_hash_and_generate_command(tmp_path):
    base = ["dataset=flowers102", "generator=tiny", f"generator.edits_dir={tmp_path}"]
    folder = EditStore.from_config(compose_config(base), "flowers102").folder
    # Prompts are keys, not part of the hash; pixel settings are.
    assert (
        EditStore.from_config(compose_config([*base, "generator.num_prompts=2"]), "flowers102").folder
        == folder
    )
    # Batched calls (the default) share a call between an image's prompts: the prompt blocks and
    # the batch size are part of the hash; one edit per call (batch_invariant) leaves both out.
    single = [*base, "generator.batch_invariant=true"]
    assert EditStore.from_config(
        compose_config([*single, "generator.batch_size=3"]), "flowers102"
    ).folder == (
        EditStore.from_config(
            compose_config([*single, "generator.prompts=[autumn,snowy]"]), "flowers102"
        ).folder
    )
    for change in [
        "generator.batch_size=2",  # 9 prompts in blocks of 2 (5 calls), not 3 (tiny's 4 and 3 both make 3 x 3)
        "generator.prompts=[autumn,snowy]",
        "generator.batch_invariant=true",
        "generator.steps=3",
        "generator.seed=1",
        "generator.prompt_template=raw",
        "generator.store_size=16",
        "generator.cache_interval=3",
    ]:
        assert EditStore.from_config(compose_config([*base, change]), "flowers102").folder != folder, change
    assert (
        EditStore.from_config(
            compose_config([*base, "generator.cache_interval=3", "generator.cache_branch_id=1"]), "flowers102"
        ).folder
        != EditStore.from_config(compose_config([*base, "generator.cache_interval=3"]), "flowers102").folder
    )
    # Each is named by the settings that give it (the branch was left out: a listing and a refusal
    # named branch 1's store by the settings of branch 0's).
    from diffusemix_bench.generation.store import _as_setting

    branch = EditStore.from_config(
        compose_config([*base, "generator.cache_interval=3", "generator.cache_branch_id=1"]), "flowers102"
    ).settings["step_cache"]
    shallow = dict(branch, branch_id=0)
    said = "generator.cache_interval=3, generator.cache_branch_id="
    assert _as_setting("step_cache", branch) == f"{said}1"
    assert _as_setting("step_cache", shallow) == "generator.cache_interval=3"
    assert _as_setting("step_cache", shallow, branch) == f"{said}0"  # beside a run's branch 1
    # The DeepCache preset is the official sampler with step caching, in its own store.
    preset = compose_config(
        ["dataset=flowers102", "generator=ip2p_deepcache", f"generator.edits_dir={tmp_path}"]
    )
    assert (preset.generator.scheduler, preset.generator.steps, preset.generator.cache_interval) == (
        "euler_ancestral",
        100,
        3,
    )
    assert EditStore.from_config(preset, "flowers102").settings["step_cache"]["interval"] == 3
    # Which image sits at an index depends on the holdout rule: a different store.
    assert (
        EditStore.from_config(compose_config([*base, "dataset.val_fraction=0.2"]), "flowers102").folder
        != folder
    )

    # Train time and generate time name the same store for the same overrides.
    extra = [*base, "generator.num_prompts=3", "generator.guidance_scale=5", "dataset.split_seed=4"]
    train_store = EditStore.from_config(compose_config(extra), "flowers102")
    gen_store = EditStore.from_config(compose_generate(extra), "flowers102")
    assert train_store.folder == gen_store.folder
    assert train_store.prompt_ids == gen_store.prompt_ids

    # The printed command composes to exactly that store.
    custom = compose_config(
        [
            *extra,
            "generator.prompts=[autumn,'a b, c',snowy,rainbow]",
            "generator.batch_size=2",
            "dataset.image_size=32",
            "dataset.resize=40",
        ]
    )
    cmd = generate_command(custom, "flowers102")
    args = shlex.split(cmd)
    assert args[:2] == shlex.split(script_command("generate.py"))
    assert "generator=tiny" in args and "generator.guidance_scale=5.0" in args
    # The stored size follows dataset.resize (generator.store_size=auto): it travels with the command,
    # and with it the crop size generate.py checks it against (without it: "dataset.resize=40 is
    # smaller than dataset.image_size=224", the command refused).
    assert "dataset.resize=40" in args and "dataset.image_size=32" in args
    from diffusemix_bench.config import validate_config

    validate_config(compose_generate(args[2:]))
    replayed = EditStore.from_config(compose_generate(args[2:]), "flowers102")
    assert replayed.folder == EditStore.from_config(custom, "flowers102").folder
    assert replayed.prompt_ids == ["autumn", prompt_id("a b, c"), "snowy"]
    # An image folder's command names its root, not paths.data_dir (not read then), and the skip
    # of corrupt images training makes.
    folder = compose_config(["dataset=imagefolder", "dataset.root=/my/images", "dataset.on_bad_image=skip"])
    args = shlex.split(generate_command(folder, "imagefolder"))
    assert "dataset.root=/my/images" in args and "dataset.on_bad_image=skip" in args
    assert not [a for a in args if a.startswith("paths.data_dir")]
    # A stored size is written as given (its field is a string, for auto): no quotes in quotes.
    sized = compose_config([*extra, "generator.store_size=24"])
    cmd = generate_command(sized, "flowers102")
    assert " generator.store_size=24 " in f"{cmd} "
    replayed = EditStore.from_config(compose_generate(shlex.split(cmd)[2:]), "flowers102")
    assert replayed.folder == EditStore.from_config(sized, "flowers102").folder


def test_printed_commands_run_where_the_user_is(tmp_path, monkeypatch):
    """A message's command names ``python`` where that runs this interpreter (an activated
    environment), else this interpreter's path; and the script from the working directory: pasted
    there, it runs."""
    from diffusemix_bench.commands import PROJECT

    monkeypatch.chdir(PROJECT)
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])
    assert script_command("generate.py") == "python generate.py"
    monkeypatch.setenv("PATH", str(tmp_path))  # no python on the PATH
    monkeypatch.chdir(tmp_path)
    cmd = script_command("generate.py")
    assert (
        cmd == f"{shlex.quote(os.path.abspath(sys.executable))} {shlex.quote(str(PROJECT / 'generate.py'))}"
    )
    done = subprocess.run(
        [*shlex.split(cmd), "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and "generate" in done.stdout.lower(), done.stderr[-2000:]


# -- the edit model ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_model() -> EditModel:
    return EditModel.from_config(compose_config(["generator=tiny"]).generator)


def _inputs(n: int = 3):
    gen = torch.Generator().manual_seed(0)
    images = [torch.randint(0, 256, (3, 20 + 4 * i, 28), generator=gen, dtype=torch.uint8) for i in range(n)]
    texts = ["A transformed version of image into autumn", "snowy", "a sketch with crayon"][:n]
    seeds = [edit_seed("flowers102", "train", i, "autumn", 0) for i in range(n)]
    return images, texts, seeds


def test_same_key_same_bytes_and_noise_is_per_sample(tiny_model, monkeypatch):
    # Batched mode (generator.batch_invariant=false): each sample still draws its own noise.
    monkeypatch.setattr(tiny_model, "batch_invariant", False)
    images, texts, seeds = _inputs()
    a = tiny_model(images, texts, seeds)
    assert torch.equal(a, tiny_model(images, texts, seeds))  # same settings -> same bytes
    assert a.shape == (3, 3, 32, 32) and torch.isfinite(a).all()
    assert not torch.equal(tiny_model(images, texts, [s + 1 for s in seeds]), a)

    # diffusers draws the initial latents and every Euler-ancestral step's noise per generator:
    # record each draw and check a sample's noise is the same alone as in a batch of three.
    import diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion_instruct_pix2pix as pipe_mod
    import diffusers.schedulers.scheduling_euler_ancestral_discrete as sched_mod

    draws: list[torch.Tensor] = []

    def recording(real):
        def randn(*args, **kwargs):
            out = real(*args, **kwargs)
            draws.append(out.clone())
            return out

        return randn

    monkeypatch.setattr(pipe_mod, "randn_tensor", recording(pipe_mod.randn_tensor))
    monkeypatch.setattr(sched_mod, "randn_tensor", recording(sched_mod.randn_tensor))
    batched = tiny_model(images, texts, seeds)
    batch_draws, draws[:] = list(draws), []
    single = torch.cat([tiny_model(images[i : i + 1], texts[i : i + 1], seeds[i : i + 1]) for i in range(3)])
    assert len(batch_draws) == 1 + tiny_model.steps  # initial latents + one per ancestral step
    singles = [draws[i * len(batch_draws) : (i + 1) * len(batch_draws)] for i in range(3)]
    for i in range(3):
        for b, s in zip(batch_draws, singles[i], strict=True):
            assert torch.equal(b[i : i + 1], s)
    # Batched kernels round differently from single ones (CPU oneDNN convolutions, BLAS gemm vs
    # gemv), so batched pixels agree only up to floating-point rounding.
    assert (batched - single).abs().max() < 1e-3


def test_batch_invariant_mode_gives_identical_bytes_for_any_batch_size(tiny_model, monkeypatch):
    monkeypatch.setattr(tiny_model, "batch_invariant", True)
    images, texts, seeds = _inputs()
    batch3 = tiny_model(images, texts, seeds)
    reordered = tiny_model(images[::-1], texts[::-1], seeds[::-1]).flip(0)
    single = torch.cat([tiny_model(images[i : i + 1], texts[i : i + 1], seeds[i : i + 1]) for i in range(3)])
    for e in (reordered, single):
        assert torch.equal(em.to_uint8(batch3), em.to_uint8(e))
        assert torch.equal(batch3, e)


@pytest.mark.parametrize(
    "extra", [["generator.dtype=bf16"], ["generator.dtype=fp16", "generator.channels_last=true"]]
)
def test_half_precision_paths_agree_with_fp32(tiny_model, extra):
    # The GPU presets (bf16 by default, fp16 as the official code) run the same code on CPU.
    model = EditModel.from_config(compose_config(["generator=tiny", *extra]).generator)
    assert model.dtype == {"generator.dtype=bf16": torch.bfloat16}.get(extra[0], torch.float16)
    images, texts, seeds = _inputs()
    out = model(images, texts, seeds)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    # bf16 keeps 8 mantissa bits, fp16 11: the edits stay within a few levels of the fp32 ones.
    assert (out - tiny_model(images, texts, seeds)).abs().max() < 0.05


@pytest.mark.slow
def test_compiled_unet_matches_eager_and_pads_the_last_batch(tiny_model, monkeypatch):
    monkeypatch.setattr(tiny_model, "batch_invariant", False)
    compiled = EditModel.from_config(
        compose_config(
            [
                "generator=tiny",
                "generator.compile=true",
                "generator.batch_invariant=false",
                "generator.batch_size=3",
            ]
        ).generator
    )
    assert compiled.pad_to == 3
    images, texts, seeds = _inputs()
    seen = []
    real_run = compiled._run
    monkeypatch.setattr(compiled, "_run", lambda x, t, s: seen.append(len(x)) or real_run(x, t, s))
    full = compiled(images, texts, seeds)
    last = compiled(images[:1], texts[:1], seeds[:1])
    assert seen == [3, 3], "a smaller last batch is padded to the compiled shape"
    assert last.shape == (1, 3, 32, 32)
    assert (full - tiny_model(images, texts, seeds)).abs().max() < 1e-3
    assert (last - full[:1]).abs().max() < 1e-3


def test_a_compiled_unet_is_padded_to_the_largest_prompt_block_not_the_batch_size():
    """Nine prompts at batch size 8 are calls of 4 and 5: a compiled UNet pads both to 5 (one
    shape), not to 8, which would compute three and four rows only to drop them."""
    g = compose_config(["generator=tiny", "generator.compile=true", "generator.batch_size=8"]).generator
    assert [len(b) for b in prompt_blocks([str(k) for k in range(9)], 8)] == [4, 5]
    assert EditModel.from_config(g).pad_to == 5
    g = compose_config(["generator=tiny", "generator.compile=true", "generator.batch_size=4"]).generator
    assert EditModel.from_config(g).pad_to == 3  # nine prompts at 4: blocks of 3, 3, 3


def test_step_cache_is_the_deepcache_package_and_runs_the_deep_blocks_every_interval(
    tiny_model, flowers, tmp_path
):
    """generator.cache_interval: DeepCache on the 8-channel InstructPix2Pix UNet. The same pixels as
    the authors' DeepCacheSDHelper given the same settings; other pixels than no caching; the deep
    blocks run on every third step only, and each pipeline call starts with a whole step."""
    from DeepCache import DeepCacheSDHelper

    images, texts, seeds = _inputs()
    g = compose_config(["generator=tiny", "generator.steps=7", "generator.cache_interval=3"]).generator
    cached = EditModel.from_config(g)
    assert cached.pipe.unet.config.in_channels == 8
    mid_calls = []
    cached.pipe.unet.mid_block.resnets[0].register_forward_hook(lambda *a: mid_calls.append(1))
    conv_in_calls = []
    cached.pipe.unet.conv_in.register_forward_hook(lambda *a: conv_in_calls.append(1))
    out = cached(images, texts, seeds)
    assert len(conv_in_calls) == 7  # the shallow branch (the 8-channel input) runs every step
    assert len(mid_calls) == 3  # steps 0, 3 and 6
    assert torch.equal(cached(images, texts, seeds), out)  # the next call starts whole again
    assert len(mid_calls) == 6
    # Nothing carries over from another call (another group of edits, a resumed run's order).
    cached(images[:2], texts[1:], [s + 7 for s in seeds[:2]])
    assert torch.equal(cached(images, texts, seeds), out)

    stock = EditModel.from_config(compose_config(["generator=tiny", "generator.steps=7"]).generator)
    plain = stock(images, texts, seeds)
    helper = DeepCacheSDHelper(pipe=stock.pipe)
    helper.set_params(cache_interval=3, cache_branch_id=0)
    helper.enable()
    assert torch.equal(stock(images, texts, seeds), out)
    helper.disable()
    assert (out - plain).abs().max() > 1e-3  # caching changes pixels: its own store

    # Bad values and a compiled UNet are refused before any work, naming the settings.
    for extra, words in [
        (["generator.cache_interval=1"], "at least 2"),
        (["generator.cache_interval=3", "generator.cache_branch_id=6"], "from 0 to 5"),
        (["generator.cache_interval=3", "generator.compile=true"], "do not go together"),
    ]:
        with pytest.raises(ConfigError, match=words):
            EditModel.from_config(compose_config(["generator=tiny", *extra]).generator)
    with pytest.raises(ConfigError, match="generator.compile=true and generator.cache_interval"):
        generate(
            compose_generate(
                gen_overrides(flowers, tmp_path, "generator.cache_interval=2", "generator.compile=true")
            )
        )
    assert not any(tmp_path.iterdir())
    # A value refused once the model is built (its branch count), after the store's folder was
    # made: the folder, holding no edit, is removed (an empty store was listed and named).
    with pytest.raises(ConfigError, match="from 0 to 5"):
        generate(
            compose_generate(
                gen_overrides(flowers, tmp_path, "generator.cache_interval=3", "generator.cache_branch_id=6")
            )
        )
    assert not any(tmp_path.iterdir())


def test_finish_aligns_with_the_original_and_store_size():
    edit = torch.rand(3, 32, 32)
    assert finish(edit, (40, 48), None).shape == (3, 40, 48)
    assert finish(edit, (40, 48), 20).shape == (3, 20, 24)
    assert finish(edit, (40, 48), 64).shape == (3, 40, 48)  # never enlarged
    assert finish(edit, (40, 48), None).dtype == torch.uint8


# -- generate.py ---------------------------------------------------------------------------------
def _all_keys_stored(store: EditStore, n: int, size: tuple[int, int] = (40, 48)) -> None:
    assert store.missing(range(n)) == []
    for i in range(n):
        for pid in store.prompt_ids:
            assert store.has(i, pid)
            assert store.read(i, pid).shape == (3, *size)  # the original's size
    assert store.check() == {"duplicates": [], "without_image": [], "unrecorded_images": []}


def test_generate_end_to_end_then_nothing_to_do(flowers, tmp_path, capsys):
    cfg = compose_generate(
        gen_overrides(flowers, tmp_path, "generator.num_prompts=2", "generator.keep_full_size=true")
    )
    first = generate(cfg)
    out = capsys.readouterr().out
    assert first["generated"] == 24 and first["existing"] == 0 and first["failed"] == 0
    assert [ln for ln in out.splitlines() if ln.startswith("summary:")] == [
        "summary: generated=24 existing=0 regenerated=0 failed=0"
    ]
    store = EditStore.from_config(cfg, "flowers102")
    assert str(store.folder) == first["folders"]["train"]
    _all_keys_stored(store, 12)
    assert store.read(0, "autumn", full=True).shape == (3, 32, 32)
    assert not torch.equal(store.read(0, "autumn"), store.read(0, "snowy"))

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        second = generate(cfg)
    assert second["generated"] == 0 and second["existing"] == 24
    # Nothing left to make is said by the summary line, not by Lightning's empty-loader warning.
    assert not [w for w in caught if "is zero" in str(w.message)]
    assert "summary: generated=0 existing=24 regenerated=0 failed=0" in capsys.readouterr().out

    # One more prompt: only its edits are made; the first two are reused.
    more = generate(
        compose_generate(
            gen_overrides(flowers, tmp_path, "generator.num_prompts=3", "generator.keep_full_size=true")
        )
    )
    assert more["generated"] == 12 and more["existing"] == 24 and more["folders"] == first["folders"]


def test_bad_edits_are_regenerated_with_new_seeds_and_counted(flowers, tmp_path, monkeypatch, capsys):
    real = EditModel.__call__
    seen: list[list[int]] = []

    def flaky(self, images, texts, seeds):
        out = real(self, images, texts, seeds)
        seen.append(list(seeds))
        for j, s in enumerate(seeds):
            # The first tries of keys 0 and 1: one NaN edit (fp16 overflow) and one black edit.
            if s == edit_seed("flowers102", "train", 0, "autumn", 0, 0):
                out[j] = float("nan")
            if s == edit_seed("flowers102", "train", 1, "autumn", 0, 0):
                out[j] = 0.0
            # Key 5 stays blank whatever its seed.
            if s in {edit_seed("flowers102", "train", 5, "autumn", 0, a) for a in range(3)}:
                out[j] = 0.5
        return out

    monkeypatch.setattr(EditModel, "__call__", flaky)
    cfg = compose_generate(
        gen_overrides(flowers, tmp_path, "generator.num_prompts=1", "generator.max_retries=2")
    )
    summary = generate(cfg)
    assert summary["regenerated"] == 2 and summary["failed"] == 1 and summary["generated"] == 11
    assert summary["retries"] == 2 + 2
    assert "summary: generated=11 existing=0 regenerated=2 failed=1" in capsys.readouterr().out
    # Each image's call holds a block of its prompts (3 of tiny's 9 at batch_size 4: num_prompts
    # picks which are stored, the block is generated whole); a retry holds the bad keys alone, with
    # attempt-1 seeds.
    assert len(seen[0]) == 3
    assert seen[1] == [edit_seed("flowers102", "train", 0, "autumn", 0, 1)]
    assert seen[3] == [edit_seed("flowers102", "train", 1, "autumn", 0, 1)]
    tried = {s for call in seen for s in call}
    assert {edit_seed("flowers102", "train", 5, "autumn", 0, a) for a in range(3)} <= tried
    store = EditStore.from_config(cfg, "flowers102")
    assert store.missing(range(12)) == [(5, "autumn")]
    # A later run goes on with attempt 3 (a new seed) rather than repeating 0 to 2; here that is good.
    rerun = generate(cfg)
    assert rerun["failed"] == 0 and rerun["generated"] == 1 and rerun["regenerated"] == 1
    assert seen[-1][0] == edit_seed("flowers102", "train", 5, "autumn", 0, 3) and len(seen[-1]) == 3


def test_an_edit_made_on_a_retry_is_made_again_in_a_call_of_the_same_shape(flowers, tmp_path, monkeypatch):
    """A batched call's shape fixes its bytes. Two prompts of image 0's block are blank on their first
    try and are retried together; when one of them is later deleted and made again, its retry holds
    the same rows (it held the deleted key alone before: another shape, and on a GPU other bytes)."""
    real = EditModel.__call__
    calls: list[list[int]] = []
    cfg = compose_generate(
        gen_overrides(flowers, tmp_path, "generator.num_prompts=2", "generator.max_retries=2")
    )
    first, second = EditStore.from_config(cfg, "flowers102").prompt_ids
    blank = {edit_seed("flowers102", "train", 0, pid, 0, 0) for pid in (first, second)}

    def two_blank(self, images, texts, seeds):
        out = real(self, images, texts, seeds)
        calls.append(list(seeds))
        for j, s in enumerate(seeds):
            if s in blank:
                out[j] = 0.0
        return out

    monkeypatch.setattr(EditModel, "__call__", two_blank)
    assert generate(cfg)["regenerated"] == 2
    retry = [edit_seed("flowers102", "train", 0, pid, 0, 1) for pid in (first, second)]
    assert retry in calls
    store = EditStore.from_config(cfg, "flowers102")
    made = store.read(0, first)
    store.path(0, first).unlink()
    calls.clear()
    again = generate(cfg)
    assert again["generated"] == 1 and again["regenerated"] == 1
    assert calls[1] == retry  # both rows again, though only the first is written
    assert torch.equal(EditStore.from_config(cfg, "flowers102").read(0, first), made)


def test_a_rerun_tries_failed_edits_with_new_seeds(flowers, tmp_path, monkeypatch, capsys):
    """Key 7 is blank for attempts 0 to 4. With max_retries=1 each run tries two attempts: the
    first run 0-1, the second 2-3 (not 0-1 again), the third 4 and then 5, which is stored."""
    attempt_of = {edit_seed("flowers102", "train", 7, "autumn", 0, a): a for a in range(12)}
    tried: list[int] = []
    real = EditModel.__call__

    def blank_until_5(self, images, texts, seeds):
        out = real(self, images, texts, seeds)
        for j, s in enumerate(seeds):
            if s in attempt_of:
                tried.append(attempt_of[s])
                if attempt_of[s] < 5:
                    out[j] = 0.0
        return out

    monkeypatch.setattr(EditModel, "__call__", blank_until_5)
    cfg = compose_generate(
        gen_overrides(flowers, tmp_path, "generator.num_prompts=1", "generator.max_retries=1")
    )
    first = generate(cfg)
    out = capsys.readouterr().out
    assert first["failed"] == 1 and first["generated"] == 11
    assert first["failed_keys"] == [("train", 7, "autumn")]
    assert "a rerun tries each failed edit with 2 new seeds" in out
    assert tried == [0, 1]
    store = EditStore.from_config(cfg, "flowers102")
    assert store.next_attempt(7, "autumn") == 2 and store.next_attempt(6, "autumn") == 0

    second = generate(cfg)
    assert second["failed"] == 1 and second["generated"] == 0 and second["retries"] == 1
    assert tried == [0, 1, 2, 3]
    assert EditStore.from_config(cfg, "flowers102").next_attempt(7, "autumn") == 4

    third = generate(cfg)
    assert third["failed"] == 0 and third["generated"] == 1
    assert third["regenerated"] == 1 and third["retries"] == 1
    assert tried == [0, 1, 2, 3, 4, 5]
    assert "summary: generated=1 existing=11 regenerated=1 failed=0" in capsys.readouterr().out

    # The stored bytes are those of attempt 5's seed; a key that never failed keeps attempt 0's.
    store = EditStore.from_config(cfg, "flowers102")
    assert store.missing(range(12)) == []
    monkeypatch.setattr(EditModel, "__call__", real)
    model = EditModel.from_config(cfg.generator)
    ds, _ = read_split(cfg, "train")
    text = store.prompt_texts["autumn"]
    for index, attempt in [(7, 5), (6, 0)]:
        image = ds.load_image(index)
        seed = edit_seed("flowers102", "train", index, "autumn", 0, attempt)
        expected = finish(model([image], [text], [seed])[0], tuple(image.shape[-2:]), None)
        assert torch.equal(store.read(index, "autumn"), expected), index


def test_store_records_the_resolved_dtype_and_refuses_another(flowers, tmp_path, monkeypatch, caplog):
    cfg = compose_generate(gen_overrides(flowers, tmp_path, "generator.num_prompts=1"))
    assert cfg.generator.dtype == "auto"
    generate(cfg)
    store = EditStore.from_config(cfg, "flowers102")
    runtime = json.loads((store.folder / "runtime.json").read_text())
    assert runtime == {
        "dtype": "fp32",
        "dtype_setting": "auto",
        "device": "cpu",
        "channels_last": False,
        "compile": False,
        "batch_invariant": False,
    }
    store.path(3, "autumn").unlink()

    # On a GPU, generator.dtype=auto resolves to bf16: same settings, same folder, other pixels.
    def auto_is_bf16(name, device):
        return torch.bfloat16 if name == "auto" else em.DTYPES[name]

    with monkeypatch.context() as m:
        m.setattr(gen_mod, "resolve_dtype", auto_is_bf16)
        m.setattr(em, "resolve_dtype", auto_is_bf16)
        with pytest.raises(ConfigError) as err:
            generate(cfg)
        msg = str(err.value)
        assert str(store.folder) in msg and "in fp32" in msg and "in bf16" in msg
        assert "generator.dtype" in msg and "generator.edits_dir" in msg
        assert EditStore.from_config(cfg, "flowers102").missing(range(12)) == [(3, "autumn")]
        # runtime.json deleted by hand: generation_log.jsonl's record of the dtype still refuses.
        (store.folder / "runtime.json").rename(tmp_path / "runtime.json")
        with pytest.raises(ConfigError) as err:
            generate(cfg)
        assert (
            "in fp32 (generator.dtype=auto on cpu) (generation_log.jsonl says: runtime.json is gone)"
            in str(err.value)
            and "in bf16" in str(err.value)
        )
        assert EditStore.from_config(cfg, "flowers102").missing(range(12)) == [(3, "autumn")]
        (tmp_path / "runtime.json").rename(store.folder / "runtime.json")
    # An explicit dtype names another folder, which the advice relies on.
    bf16 = compose_generate(
        gen_overrides(flowers, tmp_path, "generator.num_prompts=1", "generator.dtype=bf16")
    )
    assert EditStore.from_config(bf16, "flowers102").folder != store.folder

    # channels_last changes pixels by about a level: a warning, and the edit is made.
    cl = compose_generate(
        gen_overrides(flowers, tmp_path, "generator.num_prompts=1", "generator.channels_last=true")
    )
    assert EditStore.from_config(cl, "flowers102").folder == store.folder
    with caplog.at_level(logging.WARNING, logger="diffusemix_bench.generation.store"):
        assert generate(cl)["generated"] == 1
    warned = [r.getMessage() for r in caplog.records if "channels_last" in r.getMessage()]
    assert len(warned) == 1 and "channels_last=False" in warned[0] and "channels_last=True" in warned[0]
    # The record keeps what made the first edits.
    assert json.loads((store.folder / "runtime.json").read_text()) == runtime


def test_the_other_ranks_wait_for_the_first_ones_work_past_the_default_timeout():
    """With trainer.strategy=ddp the other ranks wait while the first checks the images and converts a
    store (hours for millions of edits): the process group's timeout is a day, not the default 30
    minutes; ddp stays Lightning's (start method popen), other strategies are left as given."""
    from datetime import timedelta

    from pytorch_lightning.strategies import DDPStrategy

    strategy = gen_mod._patient("ddp")
    assert isinstance(strategy, DDPStrategy) and strategy._start_method == "popen"
    assert strategy._timeout == timedelta(hours=gen_mod.FIRST_RANK_TIMEOUT_HOURS) > timedelta(hours=12)
    assert gen_mod._patient("auto") == "auto"


@pytest.mark.slow
def test_two_ranks_with_fewer_missing_edits_than_ranks(flowers, tmp_path):
    """generate.py with 2 CPU ranks (DDP) and one missing edit: the rank without a key runs an
    empty loop and both meet again for the counts; then a run where every edit fails lists the
    failed keys of both ranks."""
    ov = gen_overrides(flowers, tmp_path / "edits", "generator.num_prompts=1")
    generate(compose_generate(ov))
    store = EditStore.from_config(compose_generate(ov), "flowers102")
    before = store.read(5, "autumn")
    store.path(5, "autumn").unlink()
    ddp = ["trainer.accelerator=cpu", "trainer.devices=2", "trainer.strategy=ddp"]
    env = dict(os.environ, OMP_NUM_THREADS="1")

    def run(overrides: list[str], name: str, status: int = 0) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [sys.executable, "generate.py", *overrides, *ddp, f"hydra.run.dir={tmp_path / name}"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == status, done.stdout[-3000:] + done.stderr[-3000:]
        return done

    done = run(ov, "resume")
    assert [ln for ln in done.stdout.splitlines() if ln.startswith("summary:")] == [
        "summary: generated=1 existing=11 regenerated=0 failed=0"
    ]
    again = EditStore.from_config(compose_generate(ov), "flowers102")
    _all_keys_stored(again, 12)
    assert torch.equal(again.read(5, "autumn"), before)

    # No edit has a pixel spread of 1 (blank_std names another store): all 12 fail on both ranks.
    failing = [*ov, "generator.blank_std=1.0", "generator.max_retries=0"]
    done = run(failing, "fail", status=1)  # (the failed edits, not stored, end it with status 1)
    assert "error: 12 edits failed and were not stored" in done.stderr
    assert [ln for ln in done.stdout.splitlines() if ln.startswith("summary:")] == [
        "summary: generated=0 existing=0 regenerated=0 failed=12"
    ]
    listed = [ln for ln in done.stdout.splitlines() if ln.startswith("failed edits")]
    assert len(listed) == 1 and all(f"('train', {i}, 'autumn')" in listed[0] for i in range(12))
    bad = EditStore.from_config(compose_generate(failing), "flowers102")
    assert len(list((bad.folder / "failed").glob("*.txt"))) == 2  # one record file per rank
    assert all(bad.next_attempt(i, "autumn") == 1 for i in range(12))


def test_missing_weights_give_a_clear_error_without_network(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))

    def no_network(*args, **kwargs):
        raise AssertionError("the network was touched")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    g = compose_config(["generator=ip2p"]).generator
    with pytest.raises(EditModelWeightsError) as err:
        EditModel.from_config(g)
    msg = str(err.value)
    assert "timbrooks/instruct-pix2pix" in msg and str(tmp_path / "hub") in msg
    assert "generator.local_dir" in msg
    # The command fetches what the pipeline reads (not the repo's single-file checkpoints), and is
    # Python that compiles.
    snippet = re.search(r'`python -c "(.*?)"`', msg).group(1)
    assert (
        "from_pretrained('timbrooks/instruct-pix2pix', use_safetensors=True, safety_checker=None)" in snippet
    )
    compile(snippet, "<command>", "exec")
    # A pinned commit is the one the command fetches.
    with open_dict(g):
        g.revision = "abc123"
    with pytest.raises(EditModelWeightsError) as err:
        EditModel.from_config(g)
    snippet = re.search(r'`python -c "(.*?)"`', str(err.value)).group(1)
    assert "from_pretrained('timbrooks/instruct-pix2pix', revision='abc123', use_safetensors=True" in snippet
    compile(snippet, "<command>", "exec")
    with open_dict(g):
        g.revision = None
    with open_dict(g):
        g.local_dir = str(tmp_path / "nowhere")
    with pytest.raises(EditModelWeightsError, match="nowhere"):
        EditModel.from_config(g)


def test_generate_config_composes_with_the_typed_schema():
    cfg = compose_generate(["dataset=flowers102", "generator=tiny"], return_hydra_config=True)
    assert cfg.task_name == "generate" and cfg.generator.name == "tiny"
    assert OmegaConf.to_container(cfg.hydra.run, resolve=False)["dir"].startswith(
        "${paths.log_dir}/${task_name}/${dataset.name}/"
    )
    with pytest.raises(Exception, match="not_a_key"):
        compose_generate(["generator.not_a_key=1"])


def test_generate_a_few_images_first(flowers, tmp_path, capsys):
    """generator.limit / limit_per_class edit a handful of images; the plan is printed before any
    edit is made, the log records the run, and the rest of the split stays to be made later."""
    cfg = compose_generate(gen_overrides(flowers, tmp_path, "generator.num_prompts=2", "generator.limit=3"))
    first = generate(cfg)
    out = capsys.readouterr().out
    assert first["generated"] == 6 and first["planned"] == 6
    plan = out.index("6 edits planned: 0 already stored, 6 to make, in 3 pipeline calls")  # (one per image)
    assert out.index("edit store [train]: ") < plan < out.index("summary:")
    # One image per call (batch_invariant): a call per edit; one of each is said as one.
    for n, (extra, said) in enumerate(
        (
            (
                ["generator.num_prompts=2"],
                "2 edits planned: 0 already stored, 2 to make, in 2 pipeline calls",
            ),
            (
                ["generator.num_prompts=1"],
                "(1 prompt)\n1 edit planned: 0 already stored, 1 to make, in 1 pipeline call\n",
            ),
        )
    ):
        generate(
            compose_generate(
                gen_overrides(
                    flowers,
                    tmp_path / f"one{n}",
                    *extra,
                    "generator.limit=1",
                    "generator.batch_invariant=true",
                )
            )
        )
        assert said in capsys.readouterr().out
    store = EditStore.from_config(cfg, "flowers102")
    assert store.missing(range(3)) == [] and len(store.missing(range(12))) == 2 * 9
    log = [json.loads(line) for line in (store.folder / "generation_log.jsonl").read_text().splitlines()]
    assert (
        [r["generated"] for r in log] == [6]
        and log[0]["seconds"] > 0
        and store.generation_seconds_per_edit() > 0
    )
    per_class = compose_generate(
        gen_overrides(flowers, tmp_path, "generator.num_prompts=2", "generator.limit_per_class=1")
    )
    second = generate(per_class)
    assert second["planned"] == 2 * 3  # one image of each of the 3 classes, two prompts
    bad = compose_generate(gen_overrides(flowers, tmp_path, "generator.limit=0"))
    with pytest.raises(ConfigError, match="generator.limit"):
        generate(bad)


def test_broken_edits_are_found_and_made_again_with_the_same_bytes(flowers, tmp_path, capsys):
    """A truncated edit (found by its recorded size) and one damaged in place (found by decoding,
    generator.verify=true) are regenerated; a key stored whole is left alone. Both come back with
    the bytes an uninterrupted run wrote (each edit's seed and call are fixed by its key)."""
    cfg = compose_generate(gen_overrides(flowers, tmp_path, "generator.num_prompts=2"))
    generate(cfg)
    store = EditStore.from_config(cfg, "flowers102")
    good = {k: store.path(*k).read_bytes() for k in [(2, "autumn"), (7, store.prompt_ids[1])]}
    truncated, damaged = good
    store.path(*truncated).write_bytes(good[truncated][:100])
    store.path(*damaged).write_bytes(good[damaged][:8] + bytes(len(good[damaged]) - 8))
    capsys.readouterr()

    plain = generate(cfg)
    assert plain["broken"] == 1 and plain["generated"] == 1 and plain["existing"] == 23
    assert "(1 of them broken)" in capsys.readouterr().out
    assert store.path(*truncated).read_bytes() == good[truncated]

    verified = generate(
        compose_generate(gen_overrides(flowers, tmp_path, "generator.num_prompts=2", "generator.verify=true"))
    )
    assert verified["broken"] == 1 and verified["generated"] == 1
    assert store.path(*damaged).read_bytes() == good[damaged]
    assert generate(cfg)["generated"] == 0


def test_a_group_claimed_by_another_process_is_left_to_it(flowers, tmp_path, capsys):
    """A group whose lock another generate.py holds (here: this test) is skipped and counted, not
    made twice; once the lock is free, the next run makes it."""
    cfg = compose_generate(gen_overrides(flowers, tmp_path, "generator.num_prompts=2"))
    store = EditStore.from_config(cfg, "flowers102")
    held = store.claim("b0-5")  # image 5, the first block of prompts (it holds both stored prompts)
    assert held is not None and store.claim("b0-5") is None  # a second taker is refused
    try:
        summary = generate(cfg)
    finally:
        store.release(held)
    assert summary["by_others"] == 2 and summary["generated"] == 22
    out = capsys.readouterr().out
    assert "left to another generate.py" in out and "by_others=2" in out
    assert EditStore.from_config(cfg, "flowers102").missing(range(12)) == [(5, p) for p in store.prompt_ids]
    again = generate(cfg)
    assert again["generated"] == 2 and again["by_others"] == 0


def test_a_store_of_a_relative_edits_folder_is_named_by_its_absolute_path(tmp_path, monkeypatch):
    """generator.edits_dir (or paths.cache_dir) given relative to the working folder: the store's
    folder, as metrics.json and every message name it, is absolute (the same hash)."""
    monkeypatch.chdir(tmp_path)
    relative = EditStore.from_config(compose_config(["paths.cache_dir=cache"]), "flowers102")
    absolute = EditStore.from_config(compose_config([f"paths.cache_dir={tmp_path / 'cache'}"]), "flowers102")
    assert relative.folder.is_absolute() and relative.folder == absolute.folder
    assert relative.folder.is_relative_to(tmp_path / "cache" / "edits" / "flowers102" / "train")


def test_stores_py_lists_each_store_with_what_it_holds_and_the_settings_that_pick_it(flowers, tmp_path):
    """stores.py lists the stores under an edits folder: the edits recorded, their prompts, the
    settings apart from the defaults (as the settings that pick the store) and the generation time;
    a store with no edit says so; a bad argument is one message, exit code 1."""
    made = generate(compose_generate(gen_overrides(flowers, tmp_path / "edits", "generator.num_prompts=2")))
    store = EditStore.from_config(
        compose_generate(gen_overrides(flowers, tmp_path / "edits", "generator.num_prompts=2")), "flowers102"
    )
    empty = EditStore.from_config(
        compose_generate(gen_overrides(flowers, tmp_path / "edits", "generator.seed=3")), "flowers102"
    )
    empty.ensure_settings()
    # Another hold-out: other images at each position, another store (named by its setting).
    held = EditStore.from_config(
        compose_generate(gen_overrides(flowers, tmp_path / "edits", "dataset.val_fraction=0.2")), "flowers102"
    )
    held.ensure_settings()
    odd = tmp_path / "edits" / "flowers102" / "train" / "0123456789abcdef"
    odd.mkdir()
    (odd / "settings.json").write_text("[1, 2]")

    def stores_py(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "stores.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
        )

    listed = stores_py(f"generator.edits_dir={tmp_path / 'edits'}", "disk=true")
    assert listed.returncode == 0, listed.stderr[-2000:]
    lines = listed.stdout.splitlines()
    assert lines[0] == f"4 edit stores under {tmp_path / 'edits'}:"
    assert (
        f"{held.folder.name}: no edit recorded" in listed.stdout
        and "dataset.val_fraction=0.2" in listed.stdout
    )
    assert (
        "0123456789abcdef: settings.json unreadable (it holds a list, not the settings' table)"
        in listed.stdout
    )
    line = next(x for x in lines if store.folder.name in x)
    assert line.startswith(
        f"  flowers102/train {store.folder.name}: {made['generated']} edits (12 images x 2 prompts: autumn, snowy); generator=tiny, "
    )
    assert "of device time; last run " in line and "KiB]" in line
    # generator=tiny's own steps, resolution and batch size are its preset's: not named again.
    assert "generator.steps" not in line and "generator.resolution" not in line and "batch_size" not in line
    assert f"{empty.folder.name}: no edit recorded" in listed.stdout and "generator.seed=3" in listed.stdout
    assert (
        "0 edit stores of cub under"
        in stores_py(f"generator.edits_dir={tmp_path / 'edits'}", "dataset=cub").stdout
    )

    # No store where asked, stores near: the dataset misspelt, the folder given a level too high
    # (another folder's settings.json there, a fractal bank's, is no store) or too low: refused.
    def refused(*args: str) -> str:
        done = stores_py(*args)
        assert done.returncode == 1 and done.stderr.startswith("error: ") and "Traceback" not in done.stderr
        return done.stderr.strip().removeprefix("error: ")

    assert "did you mean dataset=flowers102? (stores are held for: flowers102)" in (
        refused(f"generator.edits_dir={tmp_path / 'edits'}", "dataset=flowers10")
    )
    (tmp_path / "nostores").mkdir()
    assert "dataset=cifar: no such dataset; did you mean dataset=cifar100? (datasets: aircraft, " in (
        refused(f"generator.edits_dir={tmp_path / 'nostores'}", "dataset=cifar")
    )
    bank = tmp_path / "fractals" / "ifs_x" / "v1"
    bank.mkdir(parents=True)
    (bank / "settings.json").write_text('{"algorithm": "ifs", "count": 8}')
    assert refused(f"generator.edits_dir={tmp_path}") == (
        f"0 edit stores under {tmp_path}: stores are further down, in {tmp_path / 'edits'}: give "
        f"generator.edits_dir={tmp_path / 'edits'} (or paths.cache_dir={tmp_path})"
    )
    assert (
        f"is one dataset's folder of stores: give generator.edits_dir={tmp_path / 'edits'} dataset=flowers102"
        in refused(f"generator.edits_dir={tmp_path / 'edits' / 'flowers102'}")
    )
    # ... or lower still: one split's folder, or the store folder generate.py prints.
    advice = f"give generator.edits_dir={tmp_path / 'edits'} dataset=flowers102"
    split = tmp_path / "edits" / "flowers102" / "train"
    assert f"{split} is one split's folder of stores: {advice}" in refused(f"generator.edits_dir={split}")
    assert f"{store.folder} is one edit store: {advice}" in refused(f"generator.edits_dir={store.folder}")
    # paths.cache_dir given the edits folder itself (its edits/ is not there): the folder named.
    inside = stores_py(f"paths.cache_dir={tmp_path / 'edits'}")
    assert inside.returncode == 1 and (
        f"{tmp_path / 'edits'} holds edit stores itself: give generator.edits_dir={tmp_path / 'edits'}"
        in inside.stderr
    )
    bad = stores_py("edits=/x")
    assert (
        bad.returncode == 1
        and bad.stderr.startswith("error: edits=/x: stores.py takes ")
        and "Traceback" not in bad.stderr
    )
    gone = stores_py(f"paths.cache_dir={tmp_path / 'nowhere'}")
    assert gone.returncode == 1 and "no such folder of edit stores" in gone.stderr


def test_a_store_folder_is_removed_only_when_made_here_and_holding_no_work(tmp_path):
    """remove_if_unused (a generate.py refused or stopped before its first edit): the folder this
    process made goes while it holds only its settings, its images' record and locks; never one
    holding an edit, nor one another process has set up too (its shared lock held), nor one made
    before."""
    cfg = compose_config([f"paths.cache_dir={tmp_path}", "generator=tiny"])
    store = EditStore.from_config(cfg, "flowers102")
    store.ensure_settings()
    other = EditStore.from_config(cfg, "flowers102")  # another generate.py that set it up too
    other.ensure_settings()
    assert not store.remove_if_unused() and store.folder.is_dir()
    other.close()
    assert store.remove_if_unused() and not store.folder.parent.parent.exists()

    store = EditStore.from_config(cfg, "flowers102")
    store.ensure_settings()
    store.write(0, store.prompt_ids[0], torch.zeros(3, 4, 4, dtype=torch.uint8))
    assert not store.remove_if_unused() and store.folder.is_dir()
    again = EditStore.from_config(cfg, "flowers102")
    again.ensure_settings()
    assert not again.remove_if_unused()  # (made by an earlier run)


def test_stores_listing_names_a_store_at_the_originals_size_as_a_setting(tmp_path):
    """A store whose edits keep their originals' size (store_size null: what auto gives where the
    training transform does not resize first) is named by the setting that picks it, in the
    command line's spelling, and its absent size rule is not listed as a setting of its own."""
    from diffusemix_bench.generation.listing import default_settings, describe

    settings = dict(default_settings(str(CONF_DIR), "flowers102", "train"))
    assert settings["store_size"] is not None and "store_size_rule" in settings
    settings["store_size"] = None
    del settings["store_size_rule"]
    record = {
        "folder": tmp_path / "0123456789abcdef",
        "dataset": "flowers102",
        "split": "train",
        "settings": settings,
        "edits": 4,
        "prompts": ["autumn", "snowy"],
        "images": 2,
    }
    line = describe(record, str(CONF_DIR))
    assert "generator.store_size=null (edits at their originals' size" in line
    assert "None" not in line and "store_size_rule" not in line
    assert ": 4 edits (2 images x 2 prompts: autumn, snowy); " in line
    # A store stopped part-way (one prompt with an image fewer): not counted as whole.
    line = describe({**record, "edits": 3}, str(CONF_DIR))
    assert (
        ": 3 edits (up to 2 images x 2 prompts: autumn, snowy; not every prompt has every image: a generate.py "
        "stopped part-way, or edits that failed (its command, run again, makes them)); "
    ) in line


def test_stores_listing_says_what_a_damaged_store_holds_and_where_the_folder_given_is(tmp_path):
    """stores.py on stores damaged by hand: with disk=true, recorded edits whose file is gone or
    cut short, and files no manifest line records; a deleted manifest/ is no "no edit recorded"
    alone; a deleted settings.json still lists the store; a store stopped after its first call
    names no generator.num_prompts its run was not given. A cache folder given a level too low,
    and a dataset that is none, are said."""
    from diffusemix_bench.generation.listing import default_settings, describe, list_stores, run_stores

    edits = tmp_path / "edits"
    settings = dict(default_settings(str(CONF_DIR), "flowers102", "train"))
    every = build_prompts(PAPER_PROMPTS)

    def made(seed: int, prompts: int, images: int) -> EditStore:
        own = {**settings, "seed": seed}
        store = EditStore(edits / "flowers102" / "train" / settings_hash(own), every, own)
        store.ensure_settings()
        for i in range(images):
            for p in every[:prompts]:
                store.write(i, p.id, torch.full((3, 4, 5), i, dtype=torch.uint8))
        return store

    def line(store: EditStore, disk: bool = False) -> str:
        (record,) = [r for r in list_stores(edits, disk=disk) if r["folder"] == store.folder]
        return describe(record, str(CONF_DIR))

    damaged = made(1, 2, 3)
    damaged.path(0, every[0].id).unlink()
    damaged.path(1, every[1].id).write_bytes(b"cut")
    (damaged.path(0, every[1].id).parent / "7.npy").write_bytes(damaged.path(2, every[1].id).read_bytes())
    damaged.close()
    assert ": 6 edits (3 images x 2 prompts: " in line(damaged) and "missing or damaged" not in line(damaged)
    said = line(damaged, disk=True)
    assert (
        "; 2 of its recorded edits are missing or damaged on disk (generate.py with these settings makes them again)"
        in said
    )
    assert "; 1 edit file is not recorded as finished (generate.py with these settings records each" in said

    lost = made(2, 2, 2)
    lost.close()
    shutil.rmtree(lost.folder / "manifest")
    assert (
        ": no edit recorded: its manifest/ folder (the record of finished edits) is gone while edits/ holds files"
        in line(lost)
    )
    shutil.rmtree(lost.folder / "edits")  # (a store left by a run stopped before its first edit)
    (lost.folder / "edits" / every[0].id).mkdir(parents=True)
    assert "manifest/ folder" not in line(lost) and ": no edit recorded" in line(lost)

    unnamed = made(3, 1, 1)
    unnamed.close()
    (unnamed.folder / "settings.json").unlink()
    assert line(unnamed) == (
        f"flowers102/train {unnamed.folder.name}: settings.json missing, its edits still there (generate.py "
        "with the settings that made them writes it again: the folder's name is their hash)"
    )

    # Stopped after its first call: 3 prompts of 9 held, the run asked for 9 (its log says).
    stopped = made(4, 3, 1)
    stopped.log_generation(generated=3, seconds=1.0, devices=1, splits=["train"], stopped=True)
    stopped.close()
    assert "generator.num_prompts" not in line(stopped) and "generator.seed=4" in line(stopped)
    assert ": 3 edits (1 image x 3 prompts: " in line(stopped)
    assert "; its last generate.py stopped part-way (its command, run again, goes on); " in line(stopped)
    asked = EditStore(stopped.folder, every[:3], stopped.settings)
    asked.log_generation(generated=1, seconds=1.0, devices=1, splits=["train"])
    assert "generator.num_prompts" not in line(stopped)  # (a run asked for 9)
    assert "stopped part-way" not in line(stopped)  # (the last run finished)
    few = made(5, 2, 1)
    EditStore(few.folder, every[:2], few.settings).log_generation(1, 1.0, 1, ["train"])
    few.close()
    assert "generator.num_prompts=2" in line(few)

    def refused(*args: str) -> str:
        with pytest.raises(SystemExit) as stop:  # (its message: what the interpreter prints, exit 1)
            run_stores(list(args), str(CONF_DIR))
        assert isinstance(stop.value.code, str) and stop.value.code.startswith("error: ")
        return stop.value.code + "\n"

    advice = f"give generator.edits_dir={edits} dataset=flowers102"
    assert (
        f"{edits / 'flowers102' / 'edits'}: no such folder of edit stores; {edits / 'flowers102'} is one "
        f"dataset's folder of stores: {advice}\n"
    ) in refused(f"paths.cache_dir={edits / 'flowers102'}")
    assert f"is one split's folder of stores: {advice}" in refused(
        f"paths.cache_dir={edits / 'flowers102' / 'train'}"
    )
    assert (
        "no store of dataset foo there (stores are held for: flowers102); foo is no dataset of the "
        "configs either (datasets: aircraft, "
    ) in refused(f"generator.edits_dir={edits}", "dataset=foo")


def test_png_stores_keep_their_folder_and_convert_with_one_command(flowers, tmp_path, capsys, monkeypatch):
    """Stores written as PNG before npy and store_size=auto existed keep their folder when asked for
    by their settings (the hash is pinned: the one the earlier code gave), and `generate.py` with
    store_format=npy fills the npy store from a PNG store of the same settings, generating nothing."""
    old = ["dataset=flowers102", "generator.batch_invariant=true", "generator.edits_dir=/x"]
    pinned = compose_config([*old, "generator.store_size=null", "generator.store_format=png"])
    assert EditStore.from_config(pinned, "flowers102").folder.name == "e32a7ea9575b77c4"

    common = ["generator.num_prompts=2", "generator.keep_full_size=true"]
    png_cfg = compose_generate(gen_overrides(flowers, tmp_path, *common, "generator.store_format=png"))
    assert generate(png_cfg)["generated"] == 24
    capsys.readouterr()
    npy_cfg = compose_generate(gen_overrides(flowers, tmp_path, *common))
    summary = generate(npy_cfg)
    assert summary["converted"] == 24 and summary["generated"] == 0
    out = capsys.readouterr().out
    assert "converted 24 edits from the png store" in out
    # The converted edits are among the existing ones, and the lines say so.
    assert "24 already stored (24 of them converted just now), 0 to make" in out
    assert "summary: generated=0 existing=24 (converted=24) regenerated=0 failed=0" in out
    png, npy = EditStore.from_config(png_cfg, "flowers102"), EditStore.from_config(npy_cfg, "flowers102")
    assert npy.path(3, "autumn").suffix == ".npy"
    # How the edits were computed and the hours spent on them go with them (the npy store had no
    # runtime.json, so any dtype could later be mixed in, and reports counted no generation time).
    assert json.loads((npy.folder / "runtime.json").read_text()) == json.loads(
        (png.folder / "runtime.json").read_text()
    )
    # (each run said to be the png store's: the listing says whose hours they were)
    made_by_png = [
        json.loads(line) for line in (png.folder / "generation_log.jsonl").read_text().splitlines()
    ]
    taken = [json.loads(line) for line in (npy.folder / "generation_log.jsonl").read_text().splitlines()]
    assert taken == [{**run, "converted_from": "png"} for run in made_by_png]
    from diffusemix_bench.generation.listing import describe, list_stores

    (listed,) = [describe(r) for r in list_stores(tmp_path, "flowers102") if r["folder"] == npy.folder]
    assert "of device time, spent by a png store these edits were converted from; last run" in listed, listed
    (own,) = [describe(r) for r in list_stores(tmp_path, "flowers102") if r["folder"] == png.folder]
    assert "converted" not in own
    for i in range(12):
        for pid in npy.prompt_ids:
            assert torch.equal(npy.read(i, pid), png.read(i, pid))
            assert torch.equal(npy.read(i, pid, full=True), png.read(i, pid, full=True))
    # A refusal after the conversion (here: made up where the groups are planned) keeps the
    # run's log, which says what was converted (cli.generation_refused).
    from diffusemix_bench.cli import generation_refused
    from diffusemix_bench.generation import generate as generate_module

    def refuse(*args, **kwargs):
        raise ConfigError("refused after converting")

    shutil.rmtree(npy.folder)
    with monkeypatch.context() as patched:
        patched.setattr(generate_module, "prompt_blocks", refuse)
        with pytest.raises(ConfigError, match="refused after converting") as refused:
            generate(npy_cfg)
    assert refused.value.work_begun == 24 and not generation_refused(refused.value)
    # Stopped part-way through the conversion (Ctrl-C): the summary counts the edits converted so far.
    shutil.rmtree(npy.folder)
    capsys.readouterr()
    real_write, written = EditStore.write, []

    def stop_after_five(self, *args, **kwargs):
        if len(written) == 5:
            raise KeyboardInterrupt
        written.append(args[:2])
        return real_write(self, *args, **kwargs)

    # (Lightning ignores Ctrl-C once it has one, for its shutdown: put back for the tests after)
    ctrl_c = signal.getsignal(signal.SIGINT)
    try:
        with monkeypatch.context() as patched:
            patched.setattr(EditStore, "write", stop_after_five)
            with pytest.raises((KeyboardInterrupt, SystemExit)):
                generate(npy_cfg)
    finally:
        signal.signal(signal.SIGINT, ctrl_c)
    assert (
        "summary: generated=0 existing=uncounted (converted=5 before it stopped; the stored edits were not "
        "counted yet) regenerated=0 failed=0"
    ) in capsys.readouterr().out
    # (its log as a conversion before runs were marked left it: the same runs, unmarked)
    shutil.copyfile(png.folder / "generation_log.jsonl", npy.folder / "generation_log.jsonl")
    assert generate(npy_cfg)["converted"] == 19  # (the rest, on the next run)
    # (the runs taken once: the resumed conversion adds none twice)
    assert len((npy.folder / "generation_log.jsonl").read_text().splitlines()) == len(made_by_png)
    # The other way: edits exported as PNG files (to look at, or share) from an npy store.
    shutil.rmtree(png.folder)
    exported = generate(png_cfg)
    assert exported["converted"] == 24 and exported["generated"] == 0
    assert torch.equal(EditStore.from_config(png_cfg, "flowers102").read(5, "autumn"), npy.read(5, "autumn"))


def test_a_store_of_other_images_is_not_converted_from(flowers, tmp_path, capsys):
    """Stores are named by the dataset and the settings, so another copy of the dataset with other
    images names the same stores: the npy store of the second copy was filled with the first copy's
    edits from its PNG store (only the target store's images were checked). Now the PNG store's
    record of images is checked first, and the edits are made from these images."""
    other = write_fixture_dataset("flowers102", tmp_path / "other", seed=1)["data_dir"]
    common = ["generator.num_prompts=1"]
    png_cfg = compose_generate(
        gen_overrides(flowers, tmp_path / "edits", *common, "generator.store_format=png")
    )
    assert generate(png_cfg)["generated"] == 12
    capsys.readouterr()
    npy_cfg = compose_generate(gen_overrides(other, tmp_path / "edits", *common))
    summary = generate(npy_cfg)
    assert summary["converted"] == 0 and summary["generated"] == 12
    said = capsys.readouterr().out
    assert (
        "the png store of the same settings is not converted from (its edits are made anew here): the edit store"
        in said
    )
    # (the PNG store records the first copy's folder, still there: another folder's store)
    assert "holds the edits of another image folder, " in said and "(image 0 of the split was " in said, said
    png, npy = EditStore.from_config(png_cfg, "flowers102"), EditStore.from_config(npy_cfg, "flowers102")
    assert not any(
        torch.equal(npy.read(i, pid), png.read(i, pid)) for i in range(12) for pid in npy.prompt_ids
    )


def test_a_store_whose_runtime_record_is_damaged_is_not_converted_from(flowers, tmp_path, capsys):
    """The other format's store with a damaged runtime.json (how its edits were computed): nothing is
    converted from it, said in one line, and the edits are made here (it stopped generate.py)."""
    common = ["generator.num_prompts=1"]
    png_cfg = compose_generate(gen_overrides(flowers, tmp_path, *common, "generator.store_format=png"))
    generate(png_cfg)
    (EditStore.from_config(png_cfg, "flowers102").folder / "runtime.json").write_text('{"dtype": ')
    capsys.readouterr()
    summary = generate(compose_generate(gen_overrides(flowers, tmp_path, *common)))
    assert summary["converted"] == 0 and summary["generated"] == 12
    out = capsys.readouterr().out
    assert "the png store of the same settings is not converted from (its edits are made anew here): " in out
    assert "runtime.json cannot be read" in out


def test_the_latest_record_of_an_edit_wins_whatever_the_process_ids(tmp_path):
    """Manifest files are named <host>-<pid>-<time_ns>.txt; read in name order, an edit made again
    by a later process with a smaller pid (82 < 852 as text) lost to the earlier record of its size,
    and the edit counted as broken on every run. They are read in the order their processes began."""
    prompts = build_prompts(["autumn"], "raw", None)
    store = EditStore(tmp_path / "store", prompts)
    image = torch.zeros(3, 8, 8, dtype=torch.uint8)
    store.write(0, "autumn", image)
    store.close()
    size = store.path(0, "autumn").stat().st_size
    manifest = tmp_path / "store" / "manifest"
    (first,) = manifest.glob("*.txt")
    first.rename(manifest / "host-852-1000.txt")
    (manifest / "host-852-1000.txt").write_text(f"autumn 0 {size + 5}\n")  # the earlier edit's size
    (manifest / "host-82-2000.txt").write_text(f"autumn 0 {size}\n")  # made again later
    again = EditStore(tmp_path / "store", prompts)
    assert again.recorded_size(0, "autumn") == size and again.stored_ok(0, "autumn")


def test_a_process_refused_for_another_dtype_leaves_no_edit_in_the_store(tmp_path):
    """Two processes start on one store before it records how its edits are computed, one in bf16
    and one in fp32: the second is refused before its edit is written (a file left there would be
    adopted by the next run, an fp32 edit in a bf16 store)."""
    prompts = build_prompts(["autumn"], "raw", None)
    image = torch.zeros(3, 8, 8, dtype=torch.uint8)
    runtime = {"dtype_setting": "auto", "channels_last": False, "compile": False, "batch_invariant": False}
    bf16, fp32 = (EditStore(tmp_path / "store", prompts) for _ in range(2))
    bf16.use_runtime({**runtime, "dtype": "bf16", "device": "cuda"})
    fp32.use_runtime({**runtime, "dtype": "fp32", "device": "cpu"})
    bf16.write(0, "autumn", image)
    with pytest.raises(ConfigError, match="holds edits computed in bf16"):
        fp32.write(1, "autumn", image)
    assert not fp32.path(1, "autumn").exists()
    assert EditStore(tmp_path / "store", prompts).adopt_unrecorded(range(2)) == 0


def test_a_damaged_store_settings_file_is_named_by_training_and_written_anew_by_generate(flowers, tmp_path):
    """A store's settings.json cut short: training refuses the store in one message naming it and
    the generate command (it read the edits without it); generate.py writes it anew from its
    settings, whose hash names the folder, keeping every edit (it advised deleting the store). A
    damaged one that these settings do not name (an earlier form's folder) is refused."""
    from diffusemix_bench.augment import AugContext, create_aug
    from diffusemix_bench.errors import UserError

    cfg = compose_generate(gen_overrides(flowers, tmp_path, "generator.num_prompts=1"))
    generate(cfg)
    store = EditStore.from_config(cfg, "flowers102")
    whole = (store.folder / "settings.json").read_text()
    (store.folder / "settings.json").write_text('{"model": ')
    train_cfg = compose_config(
        [*gen_overrides(flowers, tmp_path, "generator.num_prompts=1"), "aug=diffusemix"]
    )
    aug = create_aug(train_cfg.aug, AugContext(num_classes=102, dataset_name="flowers102", config=train_cfg))
    with pytest.raises(UserError) as refused:
        aug.check_edits(aug.edit_store(), list(range(12)))
    assert str(refused.value).startswith(f"{store.folder / 'settings.json'} is damaged (")
    assert "which are this run's (their hash names the folder): " in str(refused.value)
    assert str(refused.value).endswith(f"{store.command} writes it anew, keeping every edit")
    made = generate(cfg)
    assert made["generated"] == 0 and (store.folder / "settings.json").read_text() == whole
    aug.check_edits(aug.edit_store(), list(range(12)))

    # A value edited by hand (the file whole): said as that, and written anew as a damaged one is,
    # not "delete the store" (its edits are this run's settings', which name the folder).
    (store.folder / "settings.json").write_text(whole.replace('"steps": 2', '"steps": 3'))
    assert (store.folder / "settings.json").read_text() != whole
    with pytest.raises(UserError) as refused:
        aug.check_edits(aug.edit_store(), list(range(12)))
    assert str(refused.value) == (
        f"{store.folder / 'settings.json'} was edited: its settings do not hash to the folder's name, "
        f"{store.folder.name}, which is the hash of this run's, the settings the edits there were made with: "
        f"{store.command} writes it anew, keeping every edit"
    )
    from diffusemix_bench.generation.listing import list_stores

    (listed,) = list_stores(tmp_path)  # (stores.py: the edited settings are not shown as the store's)
    assert "settings" not in listed and listed["problem"].startswith("settings.json was edited")
    made = generate(cfg)
    assert made["generated"] == 0 and (store.folder / "settings.json").read_text() == whole
    assert "problem" not in list_stores(tmp_path)[0]

    other = EditStore(store.folder, [], {**store.settings, "steps": 1})
    (store.folder / "settings.json").write_text('{"model": ')
    with pytest.raises(UserError, match=r"is damaged .*Restore it from a copy, or delete"):
        other.ensure_settings()


def test_the_generator_choices_checked_at_start_up_are_the_implementations():
    """generate.py refuses a generator value outside the schema's choices before torch is imported;
    those choices are exactly what the generation code takes."""
    from diffusemix_bench.config import GeneratorConfig, choices_of
    from diffusemix_bench.generation.edit_model import DTYPES, SCHEDULERS, _scheduler
    from diffusemix_bench.generation.prompts import TEMPLATES
    from diffusemix_bench.generation.store import FORMATS

    assert set(choices_of(GeneratorConfig, "scheduler")) == set(SCHEDULERS)
    assert set(choices_of(GeneratorConfig, "dtype")) == {"auto", *DTYPES}
    assert set(choices_of(GeneratorConfig, "prompt_template")) == set(TEMPLATES)
    assert set(choices_of(GeneratorConfig, "store_format")) == set(FORMATS)
    from diffusers import EulerAncestralDiscreteScheduler

    pipe = type("Pipe", (), {"scheduler": EulerAncestralDiscreteScheduler()})()
    for name in SCHEDULERS:
        assert type(_scheduler(pipe, name)).__name__ == SCHEDULERS[name]


@pytest.mark.parametrize(
    "generator, expected",
    [("ip2p", "generator.local_dir=.* is not a folder"), ("tiny", "generator=tiny builds its random-weight")],
)
def test_generate_checks_local_dir_before_making_a_store(flowers, tmp_path, generator, expected):
    """A generator.local_dir that is no folder (or set beside generator=tiny, which reads no
    weights) is a user error (one message from generate.py) before any store folder is made."""
    from diffusemix_bench.errors import UserError

    edits = tmp_path / "edits"
    cfg = compose_generate(
        [
            *gen_overrides(flowers, edits),
            f"generator={generator}",
            f"generator.local_dir={tmp_path / 'nowhere'}",
        ]
    )
    with pytest.raises(UserError, match=expected):
        generate(cfg)
    assert not edits.exists()
    if generator == "ip2p":  # a folder without a saved pipeline: said before a store folder too
        # Training names the store by the path alone (it reads only the edits): no folder needed.
        train_cfg = compose_config(
            [
                *gen_overrides(flowers, edits),
                "aug=diffusemix",
                "generator=ip2p",
                f"generator.local_dir={tmp_path / 'nowhere'}",
            ]
        )
        assert train_cfg.aug.name == "diffusemix"
        from diffusemix_bench.cli import quick_checks

        quick_checks(train_cfg)  # train.py's start-up checks
        assert EditStore.from_config(train_cfg, "flowers102").settings["model"] == str(tmp_path / "nowhere")
        (tmp_path / "nowhere").mkdir()
        with pytest.raises(UserError, match=r"generator.local_dir=.* holds no model_index.json"):
            generate(cfg)
        assert not edits.exists()


@pytest.mark.parametrize(
    ("generator", "resolution", "said"), [("ip2p", 300, "296 or 304"), ("tiny", 9, "8 or 10")]
)
def test_a_resolution_the_pipeline_would_round_down_is_refused(
    flowers, tmp_path, generator, resolution, said
):
    """diffusers rounds the input down to a multiple of the VAE's scale: the full-size edit was
    not resolution x resolution as recorded. Refused before any store folder is made."""
    edits = tmp_path / "edits"
    cfg = compose_generate(
        [*gen_overrides(flowers, edits), f"generator={generator}", f"generator.resolution={resolution}"]
    )
    with pytest.raises(
        ConfigError, match=rf"generator.resolution={resolution}: .*use generator.resolution={said}"
    ):
        generate(cfg)
    assert not edits.exists()


def _generate_py_on_folder(root: Path, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    """generate.py run as its command line runs it, with the tiny pipeline, on the image folder
    ``root`` (its cache and run folder under ``tmp_path``)."""
    return subprocess.run(
        [
            sys.executable,
            "generate.py",
            "dataset=imagefolder",
            f"dataset.root={root}",
            "generator=tiny",
            *extra,
            f"paths.cache_dir={tmp_path / 'cache'}",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        cwd=ROOT,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_corrupt_image_read_by_loader_workers_ends_generate_py(tmp_path):
    """A corrupt image met by a loader worker while the workers hold images read ahead: the
    entry point names the file and exits 1. Workers ignore SIGTERM, so the process used to wait for
    them forever at exit (``data.datamodule.stop_workers_at_exit``)."""
    from diffusemix_bench.data import create_dataset
    from tests.fixtures.datasets import write_fixture_dataset

    root = write_fixture_dataset("imagefolder", tmp_path / "data", num_classes=3, per_class=6)["data_dir"]
    paths = create_dataset("imagefolder", root, "train").paths
    bad = paths[len(paths) // 2]
    bad.write_bytes(b"this is not an image")
    done = _generate_py_on_folder(root, tmp_path, "generator.num_prompts=2", "dataset.num_workers=2")
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    assert str(bad) in done.stderr and "Traceback" not in done.stderr
    # The run folder's log keeps what the terminal showed: the store, the plan, why it stopped.
    log = (tmp_path / "run" / "generate.log").read_text()
    assert "edit store [train]: " in log and "edits planned: 0 already stored" in log
    assert f"[ERROR] - error: Could not decode image {bad}" in log
    assert done.stdout.count("edits planned: 0 already stored") == 1  # printed once
    # The edits made before it are kept, said so, and their time logged for the store's cost (an
    # error other than Ctrl-C left the store's log without them).
    made = int(
        re.search(r"stopped: summary: generated=(\d+) .*\(these edits are kept\)", done.stdout).group(1)
    )
    assert made > 0
    (log,) = (tmp_path / "cache").glob("**/generation_log.jsonl")
    (record,) = [json.loads(line) for line in log.read_text().splitlines()]
    assert record["generated"] == made and record["stopped"] is True and record["seconds"] > 0


def test_a_refused_generate_py_leaves_no_folder_of_hydras_files_alone(tmp_path):
    """generate.py refused at start-up (a resolution the pipeline would round down, found inside the
    generation's checks): the run folder Hydra made, holding only its files, is removed, as
    train.py's; a run that planned its edits before it stopped keeps its log (the test above)."""
    from diffusemix_bench.cli import generation_refused
    from tests.fixtures.datasets import write_fixture_dataset

    root = write_fixture_dataset("imagefolder", tmp_path / "data", num_classes=2, per_class=2)["data_dir"]
    run = tmp_path / "run"
    done = _generate_py_on_folder(root, tmp_path, "generator.resolution=9")
    assert done.returncode == 1 and "generator.resolution=9" in done.stderr, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and not run.exists()
    # The message's exit keeps the error as its context: planned work there keeps the folder.
    planned = ConfigError("stopped")
    planned.work_begun = 12
    try:
        try:
            raise planned
        except ConfigError:
            raise SystemExit("error: stopped") from None
    except SystemExit as exc:
        assert not generation_refused(exc)
    assert generation_refused(SystemExit("error: a setting")) and not generation_refused(ValueError("a bug"))


def _imagefolder_overrides(root: Path, edits: Path, *extra: str) -> list[str]:
    return [
        "dataset=imagefolder",
        f"dataset.root={root}",
        "generator=tiny",
        "generator.num_prompts=1",
        "dataset.num_workers=0",
        f"generator.edits_dir={edits}",
        *extra,
    ]


def test_a_training_run_reads_each_image_size_once(tmp_path, monkeypatch):
    """train.py on DiffuseMix compares the images' sizes with its store's record before its run
    folder is written, and DiffuseMix again at start-up: the files are read once (a stat per image,
    minutes on a network file system for ImageNet). (A replaced image still refused before the
    folder is written: test_a_store_refuses_images_other_than_its_own.)"""
    from collections import Counter

    from diffusemix_bench import cli
    from diffusemix_bench.data import create_dataset
    from tests.conftest import FAST, compose_config, finalize

    root = write_fixture_dataset("imagefolder", tmp_path / "data", num_classes=2, per_class=3)["data_dir"]
    ov = _imagefolder_overrides(root, tmp_path / "edits")
    generate(compose_generate(ov))
    images = {str(p) for p in create_dataset("imagefolder", root, "train").paths}
    read = Counter()
    stat = Path.stat

    def counted(self, *args, **kwargs):
        if str(self) in images:
            read[str(self)] += 1
        return stat(self, *args, **kwargs)

    monkeypatch.setattr(Path, "stat", counted)
    cfg = compose_config([*FAST, *ov, "aug=diffusemix", "generator.store_size=256"])
    cli._run_train(finalize(cfg, tmp_path / "run"))
    assert set(read) == images and set(read.values()) == {1}, read


def test_a_store_refuses_images_other_than_its_own(tmp_path):
    """The store records each index's file: an image added to the folder (every later index now
    another image) is refused by generate.py and by DiffuseMix, naming the index and both files;
    the unchanged folder still trains from the store, and a store made before the record existed is
    recorded on its next generate.py run (one made with the record's earlier form, images.json, is
    still checked)."""
    import re

    from diffusemix_bench.data import create_dataset
    from diffusemix_bench.generation.store import EditStoreError, image_files

    root = write_fixture_dataset("imagefolder", tmp_path / "data", num_classes=2, per_class=3)["data_dir"]
    ov = _imagefolder_overrides(root, tmp_path / "edits")
    generate(compose_generate(ov))
    store = EditStore.from_config(compose_generate(ov), "imagefolder")
    record = store.recorded_images()
    train = create_dataset("imagefolder", root, "train")
    assert record == {
        i: [p.relative_to(root).as_posix(), p.stat().st_size] for i, p in enumerate(train.paths)
    }
    assert len(list((store.folder / "images").glob("*.txt"))) == 1
    store.check_images(image_files(train))  # the same folder: accepted
    generate(compose_generate(ov))  # nothing new to record: no second file
    assert len(list((store.folder / "images").glob("*.txt"))) == 1

    # An older store: no record, nothing checked; generate.py records it.
    shutil.rmtree(store.folder / "images")
    store.check_images({0: ["elsewhere.jpg"]})
    generate(compose_generate(ov))
    assert store.recorded_images() == record
    # The record's earlier form, one JSON object, is still read.
    shutil.rmtree(store.folder / "images")
    (store.folder / "images.json").write_text(json.dumps({str(i): f for i, f in record.items()}))
    assert store.recorded_images() == record
    # None of the images is recorded: another folder's store, kept for that folder (deleting it,
    # as the message once advised, lost that folder's edits).
    with pytest.raises(EditStoreError, match="image 1 of the split .* was") as refused:
        store.check_images({1: ["elsewhere.jpg"]})
    assert "none of this split's 1 images is among the 6 it was made from" in str(refused.value)
    assert str(refused.value).endswith(
        f"(generator.edits_dir=<folder>, in generate.py and train.py alike); {store.folder} stays the other folder's"
    )
    generate(compose_generate(ov))  # every index is recorded there: nothing is appended
    assert not (store.folder / "images").exists()

    first = train.paths[0]
    added = first.with_name("0" + first.name)  # sorts first: every index of its class moves on
    shutil.copy(first, added)
    with pytest.raises(
        EditStoreError,
        match=rf"image 0 of the split \(its position in the whole split\) was '{re.escape(first.relative_to(root).as_posix())}'",
    ):
        generate(compose_generate(ov))
    moved = create_dataset("imagefolder", root, "train")
    with pytest.raises(EditStoreError, match="paired with the wrong images") as refused:
        store.check_images(image_files(moved))
    assert "6 of this split's 7 images are among the 6 it was made from: images were added" in str(
        refused.value
    )
    # The same names, other bytes (another folder of the same dataset): refused where sizes are known.
    added.unlink()
    first.write_bytes(first.read_bytes() + b"\0")
    with pytest.raises(
        EditStoreError, match="bytes.*the same file name with other contents: the image was replaced"
    ):
        generate(compose_generate(ov))
    # ... and by training, before a step (DiffuseMix's start-up check reads the sizes too).
    from diffusemix_bench.augment import AugContext, create_aug

    cfg = compose_config([*ov, "aug=diffusemix"])
    ctx = AugContext(num_classes=2, dataset_name="imagefolder", image_size=32, seed=0, loss="jsd", config=cfg)
    with pytest.raises(
        EditStoreError, match=r"image 0 of the split .* was .*\(\d+ bytes\) there and is .*bytes\) here"
    ):
        create_aug(cfg.aug, ctx).prepare(create_dataset("imagefolder", root, "train"))
    # train.py refuses it before its run folder is written: none is left (one with failure.json
    # was, counted as a failed run by reports).
    from tests.conftest import FAST, run_entry

    run = tmp_path / "run"
    given = [*FAST, *ov, "aug=diffusemix", "generator.store_size=256", f"hydra.run.dir={run}"]
    refused = run_entry("train.py", given, tmp_path)
    said = refused.stdout + refused.stderr
    assert refused.returncode == 1 and "the image was replaced" in said and "Traceback" not in said, said[
        -3000:
    ]
    assert not run.exists()


def test_a_store_refusal_names_a_removed_image_and_another_folders_store(tmp_path):
    """A corrupt image deleted (the obvious clean-up) moved every later image's position: the
    refusal said "images were added, removed or renamed" and offered to delete the store. It names
    the file removed and says to put it back (on_bad_image=skip keeps its place). A copy of the
    folder, edited, reading the same store was told to delete it, though the store is the first
    folder's (recorded in images_root.txt): it is told to make its own."""
    from diffusemix_bench.data import create_dataset
    from diffusemix_bench.generation.store import IMAGES_ROOT, EditStoreError, image_files, image_root

    root = write_fixture_dataset("imagefolder", tmp_path / "data", num_classes=2, per_class=3)["data_dir"]
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    ov = _imagefolder_overrides(root, tmp_path / "edits")
    generate(compose_generate(ov))
    store = EditStore.from_config(compose_generate(ov), "imagefolder")
    assert (store.folder / IMAGES_ROOT).read_text() == f"{Path(root).absolute()}\n"
    assert store.images_root() == Path(root).absolute()

    train = create_dataset("imagefolder", copy, "train")
    removed = train.paths[1]
    removed.unlink()  # in the copy: a file of another folder than the store's
    moved = create_dataset("imagefolder", copy, "train")
    with pytest.raises(EditStoreError) as refused:
        store.check_images(image_files(moved, sizes=True), root=image_root(moved))
    said = str(refused.value)
    assert f"holds the edits of another image folder, {Path(root).absolute()}" in said
    assert "delete" not in said and said.endswith(f"{store.folder} stays {Path(root).absolute()}'s")

    # The store's own folder, the image deleted: named, and put back.
    own = create_dataset("imagefolder", root, "train")
    name = own.paths[1].relative_to(root).as_posix()
    own.paths[1].unlink()
    now = create_dataset("imagefolder", root, "train")
    with pytest.raises(EditStoreError) as refused:
        store.check_images(image_files(now, sizes=True), root=image_root(now))
    said = str(refused.value)
    assert f"removed since: '{name}'" in said
    assert f"Put '{name}' back (a corrupt file may stay: dataset.on_bad_image=skip leaves it out" in said
    # The same folder through a link (a data folder that is a link, say): the store's own images.
    link = tmp_path / "link"
    link.symlink_to(root)
    through = create_dataset("imagefolder", link, "train")
    with pytest.raises(EditStoreError) as refused:
        store.check_images(image_files(through, sizes=True), root=image_root(through))
    assert "another image folder" not in str(refused.value) and f"removed since: '{name}'" in str(
        refused.value
    )
    # (the first folder gone, its copy is this one's data moved: no longer another folder's)
    shutil.rmtree(root)
    with pytest.raises(EditStoreError, match=r"removed since: '") as refused:
        store.check_images(image_files(moved, sizes=True), root=image_root(moved))
    assert "another image folder" not in str(refused.value)


def test_full_size_edits_asked_of_a_finished_store_are_made(tmp_path, capsys):
    """generator.keep_full_size=true on a store made without it makes the full-size edits (it once
    planned them and then left every group "to another generate.py"); the stored edits keep their
    bytes."""
    flowers = write_fixture_dataset("flowers102", tmp_path / "data")["data_dir"]
    ov = gen_overrides(flowers, tmp_path / "edits", "generator.num_prompts=2", "generator.limit=3")
    generate(compose_generate(ov))
    store = EditStore.from_config(compose_generate(ov), "flowers102")
    before = {(i, p): store.path(i, p).read_bytes() for i in range(3) for p in store.prompt_ids}
    capsys.readouterr()
    full = compose_generate([*ov, "generator.keep_full_size=true"])
    generate(full)
    out = capsys.readouterr().out
    assert "summary: generated=6 " in out and "by_others" not in out, out[-2000:]
    again = EditStore.from_config(full, "flowers102")
    assert again.folder == store.folder and again.missing(range(3)) == []
    assert {(i, p): again.path(i, p).read_bytes() for i in range(3) for p in again.prompt_ids} == before
    assert all(again.path(i, p, full=True).is_file() for i in range(3) for p in again.prompt_ids)


def test_the_image_record_keeps_any_file_name(tmp_path):
    """Names with spaces, a leading quote or a line break come back from the record as they went
    in; a line cut short by a kill is ignored; a record that cannot be read names its file."""
    from diffusemix_bench.generation.prompts import build_prompts
    from diffusemix_bench.generation.store import EditStoreError

    store = EditStore(tmp_path / "store", build_prompts(["a"]))
    names = {0: ["a b/c d.jpg", 10], 1: ['"quoted".png', 11], 2: ["line\nbreak.jpg", 12], 3: ["plain.jpg"]}
    store.check_images(names, record=True)
    assert store.recorded_images() == names
    (store.folder / "images" / "killed.txt").write_text("4 13 cut-short.j")  # a killed process's
    assert store.recorded_images() == names
    store.check_images({**names, 4: ["cut-short.jpg", 13]}, record=True)  # recorded again, whole
    assert store.recorded_images()[4] == ["cut-short.jpg", 13]
    (store.folder / "images" / "other.txt").write_text("x 1 y.jpg\n")
    with pytest.raises(EditStoreError, match=r"other.txt is not readable .*rerun generate.py"):
        store.recorded_images()


def test_generate_skips_the_corrupt_images_train_py_skips(tmp_path, capsys):
    from diffusemix_bench.data import create_dataset
    from diffusemix_bench.data.base import CorruptImageError
    from tests.fixtures.datasets import corrupt_one_image

    root = write_fixture_dataset("imagefolder", tmp_path / "data", num_classes=2, per_class=3)["data_dir"]
    bad = corrupt_one_image("imagefolder", root.parent)
    ov = _imagefolder_overrides(root, tmp_path / "edits", "dataset.on_bad_image=skip")
    summary = generate(compose_generate(ov))
    assert "1 corrupt image(s) of imagefolder/train skipped" in capsys.readouterr().out
    store = EditStore.from_config(compose_generate(ov), "imagefolder")
    paths = [str(p) for p in create_dataset("imagefolder", root, "train").paths]
    assert summary["generated"] == len(paths) - 1
    assert store.missing(range(len(paths))) == [(paths.index(str(bad)), store.prompt_ids[0])]
    with pytest.raises(CorruptImageError, match="on_bad_image=skip"):
        generate(compose_generate(ov[:-1]))
    # train.py with the same settings trains from these edits: the corrupt image, left out, lacks
    # none (its check of the edits once counted it as missing and asked for generate.py again).
    from tests.conftest import FAST, run_entry

    run = tmp_path / "run"
    args = [
        *FAST,
        *ov,
        "aug=diffusemix",
        "aug.figure_images=0",
        "trainer.max_epochs=1",
        f"hydra.run.dir={run}",
        "generator.store_size=256",  # the store generate.py made, at the dataset's own size
    ]
    done = run_entry("train.py", [*args, f"paths.cache_dir={tmp_path / 'cache'}"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["bad_images"]["train"] == 1 and (run / "bad_images.txt").read_text().count(str(bad)) == 1
    # metrics.json names the image folder the edits it read were made from.
    assert metrics["edit_store"]["images_root"] == str(Path(root).resolve()) == str(store.images_root())
    assert (done.stdout + done.stderr).count("corrupt image(s) skipped") == 1  # said once, by the training
    # Without the setting: the edits it lacks are those of the corrupt image, and the fix is that
    # setting (the generate command it gave alone stopped on the same file).
    unset = [a for a in args if a != "dataset.on_bad_image=skip" and not a.startswith("hydra.run.dir=")]
    refused = run_entry(
        "train.py",
        [*unset, f"hydra.run.dir={tmp_path / 'run2'}", f"paths.cache_dir={tmp_path / 'cache'}"],
        tmp_path,
    )
    said = refused.stdout + refused.stderr
    assert refused.returncode == 1 and "Traceback" not in said, said[-3000:]
    assert f"are missing from the edit store {store.folder}, for images that do not decode ({bad})" in said
    assert "Add dataset.on_bad_image=skip to this command" in said


def test_generate_says_a_class_left_without_images_in_its_own_words(tmp_path, capsys, caplog):
    """A class whose every train image is corrupt, skipped: generate.py says no edits are made for
    it and that training sees none of its images, not verification's words on a split's numbers."""
    from tests.fixtures.datasets import corrupt_one_image

    root = write_fixture_dataset("imagefolder", tmp_path / "data", num_classes=2, per_class=1)["data_dir"]
    bad = corrupt_one_image("imagefolder", root.parent)
    ov = _imagefolder_overrides(root, tmp_path / "edits", "dataset.on_bad_image=skip")
    with caplog.at_level("WARNING"):
        summary = generate(compose_generate(ov))
    out = " ".join(capsys.readouterr().out.split())
    assert summary["generated"] == 1
    assert (
        f"1 corrupt image(s) of imagefolder/train skipped (dataset.on_bad_image=skip; first: {bad}): no edits are "
        "made for them"
    ) in out
    assert (
        f"class(es) {bad.parent.name} of imagefolder/train have no image left once the corrupt ones are skipped: no "
        "edits are made for them, and train.py with the same settings trains on none of their images"
    ) in out
    assert "numbers are over the other classes" not in out + caplog.text
    assert "corrupt image(s) skipped" not in caplog.text  # (said once, above)


def test_missing_edits_name_the_stores_made_with_other_settings(tmp_path):
    """Training asks for edits its settings' store lacks while stores of the same images with other
    settings are there (generator=tiny left out of train.py): the refusal names each such store and
    the settings that would pick it, as command-line settings."""
    from diffusemix_bench.augment import AugContext, create_aug
    from diffusemix_bench.generation.store import MissingEditError

    flowers = write_fixture_dataset("flowers102", tmp_path / "data")["data_dir"]
    made = gen_overrides(flowers, tmp_path / "edits", "generator.num_prompts=1")
    tiny_store = EditStore.from_config(compose_generate(made), "flowers102")
    tiny_store.ensure_settings()
    (tiny_store.folder / "edits").mkdir()  # edits made there
    # A store whose run stopped before its first edit (the weights missing, say) is not named.
    empty = EditStore.from_config(compose_generate([*made, "generator.steps=7"]), "flowers102")
    empty.ensure_settings()
    asked = [o for o in made if o != "generator=tiny"] + ["aug=diffusemix", "aug.figure_images=0"]
    cfg = compose_config(asked)
    store = EditStore.from_config(cfg, "flowers102")
    ctx = AugContext(num_classes=3, dataset_name="flowers102", image_size=32, seed=0, loss="jsd", config=cfg)
    aug = create_aug(cfg.aug, ctx)
    from diffusemix_bench.data.splits import build_splits

    with pytest.raises(MissingEditError) as refused:
        aug.prepare(build_splits(cfg.dataset, cfg.paths.data_dir).train)
    said = str(refused.value)
    assert f"Stores of flowers102/train with other settings are in {store.folder.parent}: " in said
    tiny = EditStore.from_config(compose_generate(made), "flowers102").folder.name
    # Each difference as the setting that gives it (generator=tiny names its weights too).
    assert f"{tiny} (generator=tiny, generator." in said and "tiny-random-ip2p" not in said
    assert "If one holds the edits meant, give its settings (in train.py as in generate.py)." in said
    assert empty.folder.name not in said
    # The closest store first, whatever the order of the hashes; batched stores name what differs:
    # the batch size, or the prompt list their blocks were cut from (not the batch size).
    base = [o for o in made if o != "generator=tiny"]
    for extra in (["generator.steps=3", "generator.guidance_scale=2"], ["generator.seed=9"]):
        other = EditStore.from_config(compose_config([*base, *extra]), "flowers102")
        other.ensure_settings()
        (other.folder / "edits").mkdir()
    batched = ["generator.batch_invariant=false", "generator.batch_size=2"]
    mine = EditStore.from_config(compose_config([*base, *batched]), "flowers102")
    said = mine.other_stores(shown=1)
    assert "(generator.seed=9, generator.batch_size=9) and 2 more" in said  # (9 prompts: one block)
    for extra, named in (
        # (3 and 4 cut 9 prompts alike, 3 x 3: the largest, as generator=tiny sets it, is named)
        (["generator.batch_size=3"], "generator.batch_size=4)"),
        (
            ["generator.batch_size=2", "generator.prompts=[autumn,snowy]"],
            "other generator.prompts (2: autumn, snowy;",
        ),
    ):
        other = EditStore.from_config(
            compose_config([*base, "generator.batch_invariant=false", *extra]), "flowers102"
        )
        other.ensure_settings()
        (other.folder / "edits").mkdir()
        assert f"{other.folder.name} ({named}" in mine.other_stores(shown=9)
    # Two stores apart from this run in the same six ways and from each other in one: that one is
    # named first in each (five settings are shown of a store), so the two never read alike.
    alike = ["generator.steps=4", "generator.guidance_scale=3", "generator.image_guidance_scale=2",
             "generator.resolution=64", "generator.num_prompts=2", "generator.seed=4"]  # fmt: skip
    mine = EditStore.from_config(compose_config(base), "flowers102")
    twins = []
    for size in (16, 24):
        twin = EditStore.from_config(
            compose_config([*base, *alike, f"generator.store_size={size}"]), "flowers102"
        )
        twin.ensure_settings()
        (twin.folder / "edits").mkdir()
        twins.append(twin)
    said = mine.other_stores(shown=9)
    for twin, size in zip(twins, (16, 24)):
        assert f"{twin.folder.name} (generator.store_size={size}, " in said, said


def test_a_saved_pipeline_with_parts_missing_is_one_message(tmp_path):
    """generator.local_dir holding a partial copy (a part gone, and from model_index.json): one
    message naming the folder and how to save it whole, not diffusers' ValueError."""
    import shutil

    import torch
    from omegaconf import OmegaConf

    from diffusemix_bench.generation.edit_model import EditModelWeightsError, load_ip2p
    from diffusemix_bench.generation.tiny import build_tiny_pipeline

    saved = tmp_path / "pipeline"
    build_tiny_pipeline().save_pretrained(saved, safe_serialization=True)
    shutil.rmtree(saved / "unet")
    index = json.loads((saved / "model_index.json").read_text())
    del index["unet"]
    (saved / "model_index.json").write_text(json.dumps(index))
    g = OmegaConf.create({"name": "ip2p", "local_dir": str(saved), "model_id": "timbrooks/instruct-pix2pix"})
    with pytest.raises(
        EditModelWeightsError,
        match=rf"generator\.local_dir={saved} holds an incomplete InstructPix2Pix pipeline \(",
    ):
        load_ip2p(g, torch.float32)


def test_a_lost_manifest_is_rebuilt_from_the_files_not_generated_again(flowers, tmp_path, capsys):
    """The store's manifest deleted (or a kill between an edit's rename and its manifest line):
    generate.py records the edits found whole on disk instead of making them again (hours with the
    real model), and makes again only one that does not decode; training's message says why the
    edits are not usable and that the command records them."""
    import shutil

    from diffusemix_bench.augment.registry import create_aug, run_context
    from diffusemix_bench.generation.store import MissingEditError, image_files, split_indices

    cfg = compose_generate(gen_overrides(flowers, tmp_path, "generator.num_prompts=2"))
    assert generate(cfg)["generated"] == 24
    store = EditStore.from_config(cfg, "flowers102")
    kept = store.path(3, store.prompt_ids[0]).read_bytes()
    shutil.rmtree(store.folder / "manifest")
    train_cfg = compose_config(
        [*gen_overrides(flowers, tmp_path, "generator.num_prompts=2"), "aug=diffusemix"]
    )
    aug = create_aug(train_cfg.aug, run_context(train_cfg, num_classes=2))
    from diffusemix_bench.data.splits import build_splits

    train_set = build_splits(train_cfg.dataset, train_cfg.paths.data_dir).train
    with pytest.raises(
        MissingEditError,
        match=r"their files are there, but the store's manifest, .* lacks them\)\. This command records them",
    ):
        aug.check_edits(aug.edit_store(), split_indices(train_set), image_files(train_set))
    store.path(5, store.prompt_ids[1]).write_bytes(b"cut")
    capsys.readouterr()
    again = generate(cfg)
    assert (again["generated"], again["existing"]) == (1, 23)
    assert "recorded 23 edits found whole on disk but missing from its manifest" in capsys.readouterr().out
    assert store.path(3, store.prompt_ids[0]).read_bytes() == kept


def test_a_generation_sweep_of_an_experiment_makes_each_store_once(tmp_path, capsys):
    """generate.py --multirun experiment=table5 ran the training sweep (9 methods x 3 seeds x 3
    datasets: 81 jobs, 27 on each store); the methods and seeds make the same edits, so they are
    pinned (one job per dataset), and Figure 5's prompt counts make all the prompts once. A sweep
    given on the command line is kept; --multirun --cfg job lists the jobs (it was a traceback for
    generate.py and figure4.py)."""
    from diffusemix_bench.preflight import generation_sweep
    from tests.conftest import run_entry

    listed = run_entry("generate.py", ["--multirun", "experiment=table5", "--cfg", "job"], tmp_path)
    assert listed.returncode == 0 and "Traceback" not in listed.stderr, listed.stderr[-2000:]
    assert "the experiment's sweep of aug, seed is left out" in listed.stdout and "3 runs:" in listed.stdout
    assert "one job per store, with aug=diffusemix seed=0" in listed.stdout
    figure5 = generation_sweep(["--multirun", "experiment=figure5"], str(CONF_DIR))
    assert figure5[-2:] == ["generator.num_prompts=null", "seed=0"]
    kept = generation_sweep(["--multirun", "experiment=table5", "seed=0,1"], str(CONF_DIR))
    # (DiffuseMix, the method among the experiment's that reads the edits, names the one job's
    # method; an arm that reads them, Table 7's)
    assert kept[-1] == "aug=diffusemix" and "seed=0,1" in kept
    arms = generation_sweep(["--multirun", "experiment=table7", "seed=0"], str(CONF_DIR))
    assert arms[-1] == "aug.components=edits"
    # The command line's own sweep of prompt counts: one job, at its largest count (every value's
    # prompts are the first of one store); "all the prompts" is said only where it is so.
    capsys.readouterr()
    counts = generation_sweep(["--multirun", "experiment=demo", "generator.num_prompts=1,3"], str(CONF_DIR))
    assert counts == ["--multirun", "experiment=demo", "aug=diffusemix", "seed=0", "generator.num_prompts=3"]
    said = capsys.readouterr().out
    assert "all the prompts" not in said
    assert "generator.num_prompts=1,3 is one job (each value takes the first prompts of one store)" in said
    counts = generation_sweep(["--multirun", "dataset=cub", "generator.num_prompts=2,null"], str(CONF_DIR))
    assert counts == ["--multirun", "dataset=cub", "generator.num_prompts=null"]
    # Not a list of counts of 1 or more: left as given, for the checks to say what is wrong.
    for odd in ("generator.num_prompts=interval(1,4)", "generator.num_prompts=range(0,3)"):
        assert generation_sweep(["--multirun", "dataset=cub", odd], str(CONF_DIR)) == [
            "--multirun",
            "dataset=cub",
            odd,
        ]
    assert generation_sweep(["experiment=table5", "dataset=cub"], str(CONF_DIR)) == [
        "experiment=table5",
        "dataset=cub",
    ]
    figure4 = run_entry("figure4.py", ["--multirun", "dataset=cub,cars", "--cfg", "job"], tmp_path)
    assert figure4.returncode == 0 and "2 runs:" in figure4.stdout, figure4.stderr[-2000:]


def _hub_cache_with(cache: Path, repo: str, commits: list[str], main: str) -> None:
    """A Hugging Face hub cache holding the tiny pipeline under each of ``commits`` of ``repo``,
    its main branch at ``main`` (what a download leaves: refs/main and snapshots/<commit>/)."""
    from diffusemix_bench.generation.tiny import build_tiny_pipeline

    folder = cache / f"models--{repo.replace('/', '--')}"
    for commit in commits:
        build_tiny_pipeline().save_pretrained(folder / "snapshots" / commit, safe_serialization=True)
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / "main").write_text(main)


def test_a_store_is_made_from_one_hub_commit_of_the_weights(flowers, tmp_path, monkeypatch):
    """generate.py records the hub commit it loaded the pipeline from (runtime.json's
    weights_commit); when the hub's main branch has moved, filling the store from the new commit is
    refused, naming both, and generator.revision=<the store's commit> finishes it. The revision is
    not part of the store's name: train.py finds the store without it."""
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    old, new = "a" * 40, "b" * 40
    _hub_cache_with(cache, "someone/ip2p-test", [old], main=old)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    ip2p = [
        "generator=ip2p",
        "generator.model_id=someone/ip2p-test",
        "generator.steps=2",
        "generator.resolution=32",
        "generator.dtype=fp32",
        "generator.batch_size=4",
    ]
    base = gen_overrides(flowers, tmp_path / "edits", *ip2p)
    first = generate(compose_generate([*base, "generator.num_prompts=1"]))
    assert first["generated"] == 12
    store = EditStore.from_config(compose_generate([*base, "generator.num_prompts=1"]), "flowers102")
    assert store.stored_runtime()["weights_commit"] == old
    # The hub's main branch moved (a later download): the store's missing edits are refused.
    _hub_cache_with(cache, "someone/ip2p-test", [new], main=new)
    with pytest.raises(ConfigError) as refused:
        generate(compose_generate([*base, "generator.num_prompts=2"]))
    assert (
        f"holds edits made with commit {old} of someone/ip2p-test, and this run loaded commit {new}; one store "
        f"never mixes the two. Finish it with generator.revision={old}"
    ) in str(refused.value)
    assert store.stored_runtime()["weights_commit"] == old
    # Pinned to the store's commit: the same store is finished.
    pinned = generate(compose_generate([*base, "generator.num_prompts=2", f"generator.revision={old}"]))
    assert pinned["generated"] == 12 and pinned["existing"] == 12 and pinned["folders"] == first["folders"]
    # A folder given as generator.model_id is read as it is: no commit (it raised from the hub's
    # id check after the pipeline had loaded).
    folder = cache / "models--someone--ip2p-test" / "snapshots" / old
    local = [*gen_overrides(flowers, tmp_path / "edits2", *ip2p), f"generator.model_id={folder}"]
    assert generate(compose_generate([*local, "generator.num_prompts=1"]))["generated"] == 12
    made = EditStore.from_config(compose_generate([*local, "generator.num_prompts=1"]), "flowers102")
    assert "weights_commit" not in made.stored_runtime()


def test_edits_for_a_warped_dataset_are_stored_squashed_as_training_reads_the_original(flowers, tmp_path):
    """dataset.warp=true (Table 8's SnapMix geometry: both sides resized to dataset.resize): the
    edits are stored squashed to resize x resize, as the training transform squashes the original,
    so training reads them as they are (stored keeping the aspect ratio, each was read whole and
    resized a second time); a store of its own, and the generate command carries dataset.warp."""
    from diffusemix_bench.data.transforms import train_transform

    size = ["dataset.image_size=32", "dataset.resize=40", "generator.num_prompts=1"]
    warped = gen_overrides(flowers, tmp_path / "edits", *size, "dataset.warp=true")
    plain = gen_overrides(flowers, tmp_path / "edits", *size)
    assert generate(compose_generate(warped))["generated"] == 12
    store = EditStore.from_config(compose_generate(warped), "flowers102")
    assert store.folder != EditStore.from_config(compose_generate(plain), "flowers102").folder
    assert store.settings["store_size_rule"].startswith("both sides = store_size")
    cfg = compose_config([*warped, "aug=diffusemix"])
    lead = train_transform("resize_crop", 32, 40, warp=True).transforms[0]
    original = torch.zeros(3, 40, 48, dtype=torch.uint8)  # the fixture's 40 x 48 pictures
    slot = torch.empty_like(lead(original))
    assert tuple(slot.shape) == (3, 40, 40)
    assert store.read_into(0, store.prompt_ids[0], slot)  # read as it is, into the training stack's slot
    assert "dataset.warp=true" in shlex.split(generate_command(cfg, "flowers102"))
    # Named as the setting that picks it among the stores of other settings.
    EditStore.from_config(compose_generate(plain), "flowers102").ensure_settings()
    (EditStore.from_config(compose_generate(plain), "flowers102").folder / "edits").mkdir()
    assert "dataset.warp=false" in store.other_stores()


def test_a_store_of_other_weights_is_not_converted_from(flowers, tmp_path, capsys):
    """The other format's store of the same settings whose edits were made from another hub commit
    of the weights (the commit is not part of a store's name) is not converted from: its edits
    are made anew, said in one line (a refusal naming a revision that could not help, before)."""
    base = gen_overrides(flowers, tmp_path / "edits", "generator.num_prompts=1")
    npy = compose_generate(base)
    assert generate(npy)["generated"] == 12
    source = EditStore.from_config(npy, "flowers102")
    runtime = source.stored_runtime()
    (source.folder / "runtime.json").write_text(json.dumps({**runtime, "weights_commit": "a" * 40}))
    png = compose_generate([*base, "generator.store_format=png"])
    target = EditStore.from_config(png, "flowers102")
    target.ensure_settings()
    (target.folder / "runtime.json").write_text(json.dumps({**runtime, "weights_commit": "b" * 40}))
    capsys.readouterr()
    made = generate(png)
    said = capsys.readouterr().out
    assert made["generated"] == 12 and made.get("converted", 0) == 0, made
    assert (
        "the npy store of the same settings is not converted from (its edits are made anew here): its edits "
        f"were made from commit {'a' * 40} of the weights, this store's from {'b' * 40}"
    ) in said


def test_a_warped_datasets_store_made_before_the_squashed_rule_is_still_its_store(flowers, tmp_path):
    """Before warped datasets had squashed edits, their store was the store of the same settings
    without dataset.warp (edits keeping the aspect ratio, which training resizes): where it holds
    edits it stays the store of these settings (a run in progress resumes; nothing is made again),
    and further edits go in at its own rule."""
    size = ["dataset.image_size=32", "dataset.resize=40"]
    plain = gen_overrides(flowers, tmp_path / "edits", *size, "generator.num_prompts=1")
    assert generate(compose_generate(plain))["generated"] == 12
    earlier = EditStore.from_config(compose_generate(plain), "flowers102")
    warped = gen_overrides(flowers, tmp_path / "edits", *size, "dataset.warp=true", "generator.num_prompts=2")
    store = EditStore.from_config(compose_generate(warped), "flowers102")
    assert store.folder == earlier.folder and not store.warp
    more = generate(compose_generate(warped))
    assert more["generated"] == 12 and more["existing"] == 12
    assert tuple(store.read(0, store.prompt_ids[1]).shape) == (3, 40, 48)  # the store's own rule


def test_every_rank_takes_its_share_of_the_first_ranks_list():
    """Each rank lists the missing edits itself; another generate.py filling the store meanwhile
    can make one rank's list shorter by an edit, and shares of two lists (groups[r::world]) leave
    groups to no rank and give others to two. Every rank shares the first rank's list."""
    from types import SimpleNamespace

    from diffusemix_bench.generation.generate import plan_groups, rank_share

    blocks = [["a"]]
    first = plan_groups("train", list(range(6)), [(i, "a") for i in range(6)], blocks)
    second = plan_groups(
        "train", list(range(6)), [(i, "a") for i in range(6) if i != 1], blocks
    )  # 1 made since
    lists = {0: first, 1: second}

    def trainer(rank):
        return SimpleNamespace(
            global_rank=rank, world_size=2, strategy=SimpleNamespace(broadcast=lambda obj, src: lists[src])
        )

    shares = [rank_share(lists[rank], trainer(rank)) for rank in (0, 1)]
    made = sorted(g.index for share in shares for g in share)
    assert made == list(range(6))  # each group once (own lists: 0, 2, 4 and 2, 4: 3 and 5 by nobody)
    one = SimpleNamespace(global_rank=0, world_size=1, strategy=None)
    assert rank_share(first, one) == first


def test_a_stores_weights_are_named_by_the_setting_that_gives_them():
    """Other stores' weights are told as a setting to give: a local folder, a hub id."""
    from diffusemix_bench.generation.store import TINY_ID, _as_setting

    assert _as_setting("model", "/weights/ip2p") == "generator.local_dir=/weights/ip2p"
    assert (
        _as_setting("model", "timbrooks/instruct-pix2pix") == "generator.model_id=timbrooks/instruct-pix2pix"
    )
    assert _as_setting("model", TINY_ID) == "generator=tiny"


def test_generation_logs_with_damaged_bytes_or_marks_are_read_and_converted(tmp_path):
    """A generation_log.jsonl holding bytes that are not text, or a converted_from that is no
    format's name (edited by hand): the runs are read (the damaged line left out) and converted
    with the edits, not a UnicodeDecodeError that stops generate.py or a TypeError in stores.py."""
    from diffusemix_bench.generation.listing import describe, list_stores
    from diffusemix_bench.generation.store import settings_hash

    split = tmp_path / "edits" / "flowers102" / "train"  # (each folder named by its settings' hash)
    source = EditStore(split / settings_hash({"generator": "tiny"}), [], {"generator": "tiny"})
    npy = {"generator": "tiny", "format": "npy"}
    target = EditStore(split / settings_hash(npy), [], npy)
    for store in (source, target):
        store.folder.mkdir(parents=True)
        (store.folder / "settings.json").write_text(json.dumps(store.settings))
    run = {"time": "2026-01-01T00:00:00", "generated": 4, "seconds": 7200.0, "devices": 1}
    (source.folder / "generation_log.jsonl").write_bytes(
        json.dumps(run).encode() + b"\n\xff\xfe not text\n"
        + json.dumps({**run, "seconds": 3600.0, "converted_from": ["png"]}).encode() + b"\n"
    )  # fmt: skip
    (target.folder / "generation_log.jsonl").write_bytes(b"\xff\n")
    target._take_records_of(source)
    taken = target.generation_runs()
    assert [(r["device_seconds"], r["converted_from"]) for r in taken] == [(7200.0, "png"), (3600.0, None)]
    assert [r["converted_from"] for r in source.generation_runs()] == [None, None]
    lines = [describe(r) for r in list_stores(tmp_path / "edits")]
    assert any(
        "generation 3.00 h of device time, 2.00 h of it spent by a png store" in line for line in lines
    ), lines


def test_another_image_folder_of_same_names_and_sizes_is_refused_and_a_copy_is_not(tmp_path):
    """Two image folders whose files have the same names and byte sizes (BMP files of one size):
    the second read the first's edits without a word. Their bytes are compared now: another
    folder's images are refused (naming the image), a copy of the same images reads the store."""
    import shutil

    import numpy as np
    from PIL import Image

    from diffusemix_bench.generation.store import EditStoreError

    def folder(name: str, seed: int) -> Path:
        rng = np.random.default_rng(seed)
        for split in ("train", "val"):
            for label in ("cat", "dog"):
                (tmp_path / name / split / label).mkdir(parents=True)
                for k in range(2):
                    pixels = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
                    Image.fromarray(pixels).save(tmp_path / name / split / label / f"{k}.bmp")
        return tmp_path / name

    first, second = folder("bmp1", 0), folder("bmp2", 1)
    edits = tmp_path / "edits"
    assert generate(compose_generate(_imagefolder_overrides(first, edits)))["generated"] == 4
    with pytest.raises(EditStoreError) as refused:
        generate(compose_generate(_imagefolder_overrides(second, edits)))
    said = str(refused.value)
    assert f"holds the edits of another image folder, {first}: image 0 of the split, " in said, said
    assert "has the same name and size there and other contents here" in said
    copy = tmp_path / "copy"
    shutil.copytree(first, copy)
    assert generate(compose_generate(_imagefolder_overrides(copy, edits)))["existing"] == 4


def test_a_generation_sweep_of_two_data_folders_into_one_store_starts_no_job(tmp_path):
    """generate.py --multirun over two image folders with one edits folder: both would make their
    edits in one store, the second refused after the first had generated. Refused before any job,
    with the fix."""
    from tests.conftest import run_entry

    roots = [
        write_fixture_dataset("imagefolder", tmp_path / name, per_class=1, seed=k)["data_dir"]
        for k, name in enumerate(("a", "b"))
    ]
    edits = tmp_path / "edits"
    args = ["--multirun", *_imagefolder_overrides(f"{roots[0]},{roots[1]}", edits)]
    args += [f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    result = run_entry("generate.py", args, tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert (
        f"error: jobs 0 and 1 of this sweep would make their edits in one store ({edits}/imagefolder/train/"
        in result.stderr
        and f"from two data folders ({roots[0]} and {roots[1]})" in result.stderr
        and "Give each data folder an edits folder of its own (generator.edits_dir=<folder>" in result.stderr
    ), result.stderr[-2000:]
    assert not edits.exists() and not (tmp_path / "sweep").exists()


def test_edits_that_failed_every_try_end_generate_py_with_status_1(tmp_path):
    """Edits that failed every try are not stored: generate.py says so in its last line and ends
    with status 1 (it had ended with 0, and a script training next failed there); its log is kept."""
    from tests.conftest import run_entry

    root = write_fixture_dataset("imagefolder", tmp_path / "data", per_class=1)["data_dir"]
    args = _imagefolder_overrides(
        root, tmp_path / "edits", "generator.blank_std=100", "generator.max_retries=0"
    )
    result = run_entry("generate.py", [*args, f"hydra.run.dir={tmp_path / 'log'}"], tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert "summary: generated=0 existing=0 regenerated=0 failed=" in result.stdout
    last = result.stderr.strip().splitlines()[-1]
    assert re.fullmatch(
        r"error: \d+ edits failed and were not stored \(listed above\): run the same command again to try them with "
        r"new seeds \(raise generator\.max_retries for more tries per run\)",
        last,
    ), last
    assert "failed=" in (tmp_path / "log" / "generate.log").read_text()


def test_an_edits_folder_given_a_level_off_is_named_with_the_folder_of_stores(tmp_path):
    """generate.py given the store folder it printed (or a dataset's folder of stores) as
    generator.edits_dir is refused with the folder to give: it had made a store inside the store
    and every edit again. train.py's message for edits it cannot find names that folder too."""
    from tests.conftest import run_entry

    root = write_fixture_dataset("imagefolder", tmp_path / "data", per_class=1)["data_dir"]
    edits = tmp_path / "edits"
    assert generate(compose_generate(_imagefolder_overrides(root, edits)))["generated"] > 0
    (store,) = edits.glob("imagefolder/train/*")
    result = run_entry("generate.py", _imagefolder_overrides(root, store), tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert (
        f"error: generator.edits_dir={store} is not a folder of edit stores itself, and generate.py would make every "
        f"edit again in a store inside it: {store} is one edit store: give generator.edits_dir={edits} "
        "dataset=imagefolder"
    ) in result.stderr, result.stderr[-2000:]
    assert not (store / "imagefolder").exists()
    train = [
        "dataset=imagefolder",
        f"dataset.root={root}",
        "aug=diffusemix",
        "generator=tiny",
        "generator.num_prompts=1",
        f"generator.edits_dir={edits / 'imagefolder'}",
        "debug=fast",
        f"hydra.run.dir={tmp_path / 'run'}",
    ]
    result = run_entry("train.py", train, tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert (
        f"generator.edits_dir={edits / 'imagefolder'} is not the folder of stores itself: {edits / 'imagefolder'} is "
        f"one dataset's folder of stores: give generator.edits_dir={edits} dataset=imagefolder"
    ) in result.stderr, result.stderr[-2000:]
    # A folder that does not exist (a typo) is said to be that, with no store found deeper in the
    # folder above it offered as the one meant.
    from diffusemix_bench.generation.listing import list_stores

    with pytest.raises(ConfigError) as missing:
        list_stores(tmp_path / "edist")
    assert str(missing.value).startswith(
        f"{tmp_path / 'edist'}: no such folder of edit stores; give the folder"
    )


def test_a_run_logged_after_a_line_cut_short_is_kept(tmp_path):
    """generation_log.jsonl whose last line was cut short (a write stopped part-way): the next run's
    record goes on a line of its own and is read (it had been joined to the broken line, both lost)."""
    from diffusemix_bench.generation.store import settings_hash

    settings = {"generator": "tiny"}
    store = EditStore(tmp_path / "flowers102" / "train" / settings_hash(settings), [], settings)
    store.folder.mkdir(parents=True)
    run = {"time": "2026-01-01T00:00:00", "generated": 4, "seconds": 7200.0, "devices": 1}
    (store.folder / "generation_log.jsonl").write_text(json.dumps(run) + "\n" + json.dumps(run)[:30])
    store.log_generation(generated=3, seconds=60.0, devices=2, splits=["train"])
    runs = store.generation_runs()
    assert [r["device_seconds"] for r in runs] == [7200.0, 120.0]


def test_a_stores_listing_names_its_prompts_as_they_were_given(tmp_path):
    """A prompt whose id is not its text (capitals, letters outside a-z, punctuation) is listed by
    stores.py as generator.prompts gave it, from generate.py's log (it showed 'caf-au-lait_7c413039')."""
    from diffusemix_bench.generation.listing import describe, list_stores

    root = write_fixture_dataset("imagefolder", tmp_path / "data", per_class=1)["data_dir"]
    edits = tmp_path / "edits"
    given = ['generator.prompts=["café au lait","Snowy, with fog",autumn]', "generator.num_prompts=null"]
    generate(compose_generate([*_imagefolder_overrides(root, edits), *given]))
    (record,) = list_stores(edits)
    assert sorted(record["prompts"]) == sorted(['"Snowy, with fog"', "autumn", "café au lait"])
    assert "café au lait" in describe(record)


def test_trainer_settings_lightning_refuses_end_generate_py_with_one_message(tmp_path):
    """generate.py runs the pipeline through Lightning's Trainer: a strategy it does not know is one
    message naming the setting as generate.py takes it, no traceback and no log folder left."""
    from tests.conftest import run_entry

    root = write_fixture_dataset("imagefolder", tmp_path / "data", per_class=1)["data_dir"]
    args = [*_imagefolder_overrides(root, tmp_path / "edits"), "trainer.strategy=bogus"]
    result = run_entry("generate.py", [*args, f"hydra.run.dir={tmp_path / 'log'}"], tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert (
        "error: Lightning's Trainer refuses these settings: You selected an invalid strategy name: "
        "`trainer.strategy='bogus'`" in result.stderr
    ), result.stderr[-2000:]
    assert not (tmp_path / "log").exists()
