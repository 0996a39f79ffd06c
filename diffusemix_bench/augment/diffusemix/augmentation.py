"""DiffuseMix (CVPR'24): originals paired with stored InstructPix2Pix edits, composed on the device
with half masks and a fractal blend (Eq. 1-3), in the paper's online form or the official recipe."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from ...config import DiffuseMixConfig, choices_of
from ...errors import ConfigError
from ..base import AugBatch, AugContext, Augmentation
from ..fractals import FractalBank, progress_shown
from ..registry import register_aug
from .compose import COMPONENTS, WholeImageComposer, aligned_edit, compose_component, resize_fractals
from .masks import half_mask_templates, mask_kinds

log = logging.getLogger(__name__)

MODES = choices_of(DiffuseMixConfig, "mode")
#: Which views a training item gives (``aug.views``): the clean original beside the composed views,
#: or only views of the run's component (Table 7's column reading).
VIEWS = choices_of(DiffuseMixConfig, "views")
#: Which edit the composition reads (``aug.edit_source``).
EDIT_SOURCES = choices_of(DiffuseMixConfig, "edit_source")
#: The size composed whole images are brought to before the training crop (``aug.composed_size``).
COMPOSED_SIZES = choices_of(DiffuseMixConfig, "composed_size")
#: Where composition happens relative to the training crop and flip (``aug.compose``).
COMPOSE_STAGES = choices_of(DiffuseMixConfig, "compose")
#: How composed whole images are computed (``aug.arithmetic``).
ARITHMETIC = choices_of(DiffuseMixConfig, "arithmetic")
#: The schema's defaults: a setting refused where it changes nothing is told apart from its default.
_SCHEMA_DEFAULTS = DiffuseMixConfig()


class DiffuseMixTrainSet(Dataset):
    """The training split with each image's stored edits, cropped and flipped together.

    Items are ``(stack, label, index)`` with ``stack`` uint8 ``(1 + num_edits) x C x H x W``: the
    original, then ``num_edits`` edits of distinct random prompts (fewer prompts than edits: drawn
    with replacement). With ``static_append`` the set holds ``N`` originals followed by ``N x P``
    (original, prompt) pairs: ``index`` is then the item's position in that longer set (the device
    step reads the pair's fixed mask and fractal from it), and an original's edit slot repeats it.

    With a ``composer`` (``aug.compose=before_crop``) the whole images are composed here, before the
    transform, and the stack holds the training views instead (see :class:`WholeImageComposer`).
    """

    def __init__(
        self,
        base,
        store,
        store_indices: list[int],
        num_edits: int,
        static: bool = False,
        composer: WholeImageComposer | None = None,
        full_edits: bool = False,
    ) -> None:
        self.base = base
        self.store = store
        self.store_indices = store_indices
        self.num_edits = num_edits
        self.static = static
        self.composer = composer
        self.full_edits = full_edits
        self.num_prompts = len(store.prompt_ids) if store is not None else 0
        self._split = None
        self._split_of = None  # the transform _split was made from (a policy change replaces it)

    def __len__(self) -> int:
        n = len(self.base)
        return n * (1 + self.num_prompts) if self.static else n

    def _edit(self, i: int, prompt_id: str, like: torch.Tensor) -> torch.Tensor:
        edit = self.store.read(self.store_indices[i], prompt_id, full=self.full_edits)
        if self.composer is not None and self.composer.size is not None:
            return edit  # squared to compose_size with the original by the composer
        return aligned_edit(edit, like)

    def __getitem__(self, item: int) -> tuple[torch.Tensor, int, int]:
        n = len(self.base)
        i, prompts = item, []
        if self.static:
            if item >= n:
                i, j = divmod(item - n, self.num_prompts)
                prompts = [self.store.prompt_ids[j]] if self.num_edits else []
        elif self.num_edits:
            p = self.num_prompts
            picks = (
                torch.randperm(p)[: self.num_edits]
                if p >= self.num_edits
                else torch.randint(p, (self.num_edits,))
            )
            prompts = [self.store.prompt_ids[k] for k in picks.tolist()]
        original = self.base.load_image(i)
        if self.composer is not None:
            images = [original] + [self._edit(i, pid, original) for pid in prompts]
            images = self.composer(images, item - n if self.static and item >= n else None)
            transform = self.base.transform
            if transform is not None:
                # One call with every image: v2 transforms draw their parameters once per call, so
                # the views get the same crop and flip.
                images = transform(*[tv_tensors.Image(im) for im in images])
                images = images if isinstance(images, tuple) else (images,)
            stack = torch.stack([im.as_subclass(torch.Tensor) for im in images])
            return stack, self.base.targets[i], item
        lead, rest = self._split_transform()
        if lead is not None:  # the transform's leading resize, on the original alone
            original = lead(tv_tensors.Image(original)).as_subclass(torch.Tensor)
        size = list(original.shape[-2:])
        stack = torch.empty((1 + self.num_edits, *original.shape), dtype=torch.uint8)
        stack[0] = original
        for k, pid in enumerate(prompts, start=1):
            # Stored at the size training reads it (generator.store_size=auto): read straight into
            # its slot of the stack. Otherwise resized as the leading resize (bilinear, antialiased)
            # resizes the original.
            if self.full_edits or not self.store.read_into(self.store_indices[i], pid, stack[k]):
                edit = self.store.read(self.store_indices[i], pid, full=self.full_edits)
                stack[k] = edit if list(edit.shape[-2:]) == size else TF.resize(edit, size, antialias=True)
        # Empty edit slots (static originals) repeat the original so every stack has one shape.
        stack[1 + len(prompts) :] = original
        if rest is not None:
            # The random crop and flip drawn once for the whole stack, in one call on it: the
            # original and its edits stay aligned.
            out = rest(tv_tensors.Image(stack))
            stack = (out[0] if isinstance(out, tuple) else out).as_subclass(torch.Tensor)
        return stack, self.base.targets[i], item

    def _split_transform(self):
        """(leading v2.Resize or None, the rest of the training transform or None)."""
        transform = self.base.transform
        if self._split is None or self._split_of is not transform:
            self._split_of = transform
            ops = list(transform.transforms) if isinstance(transform, v2.Compose) else [transform]
            ops = [op for op in ops if op is not None]
            lead = ops.pop(0) if ops and isinstance(ops[0], v2.Resize) else None
            rest = v2.Compose(ops) if ops else None
            self._split = (lead, rest)
        return self._split


@register_aug("diffusemix", DiffuseMixConfig)
class DiffuseMix(Augmentation):
    """DiffuseMix: A = (1 - λ)(I ⊙ M + Î ⊙ (1 - M)) + λ F (Eq. 3) on whole batches on the device.

    With ``loss=jsd`` (the default through ``loss=auto``; paper: "JS-divergence as in AugMix") each
    batch becomes [clean original, view 1, view 2], the two views independent draws (different
    prompts, masks and fractals); with ``loss=ce`` one composed view (``ce_include_original`` adds
    the original as a second view).

    By default composition happens on the training crop, after the original and its edits were
    cropped and flipped together, so M alone decides where the original sits. ``compose=before_crop``
    composes each whole image first, as Algorithm 1 and the official code do, and the training crop
    then applies to the composed image (a crop may miss one half). Where this departs from the
    official code: on 32-64 px datasets whose training transform only crops (CIFAR-100,
    Tiny-ImageNet) the composed square is brought back to the original's size before the crop
    (``composed_size=auto``), since the official code's own training resolution is 224 px; and the
    official experiments compose from the model's full-size edit (``edit_source=full``). With
    ``arithmetic=official`` (both official experiments) the composed bytes equal the official code's
    for the same inputs; ``exact`` computes Eq. 3 in floating point and rounds once.

    Table 7 arms (``components``) keep AugMix's clean original as the JSD anchor by default
    (``views=with_original``); ``views=arm_only`` makes every view a draw of the arm, so an arm
    trains on exactly what its column names.
    """

    default_loss = "jsd"
    supports_jsd = True

    @classmethod
    def loss_for(cls, aug_cfg) -> str:
        # The official recipe's fixed composed set has one view per image: nothing for JSD.
        return "ce" if aug_cfg.get("mode") == "static_append" else cls.default_loss

    def __init__(
        self,
        ctx: AugContext,
        lam: float = 0.2,
        masks: str = "paper4",
        seam_px: int = 0,
        arithmetic: str = "exact",
        mode: str = "online",
        replace_prob: float = _SCHEMA_DEFAULTS.replace_prob,
        components: str = "hybrid_fractal",
        ce_include_original: bool = False,
        static_seed: int = 0,
        compose: str = "after_crop",
        compose_size: int = 0,
        figure_images: int = 8,
        figure_generate: bool = False,
        views: str = "with_original",
        composed_size: str = "auto",
        edit_source: str = "stored",
    ) -> None:
        super().__init__(ctx)
        if not 0.0 <= lam <= 1.0:
            raise ConfigError(
                f"aug.lam is the fractal blend factor of Eq. 2 and must be in [0, 1], got {lam}"
            )
        if mode not in MODES:
            raise ConfigError(f"aug.mode must be one of {list(MODES)}, got '{mode}'")
        if components not in COMPONENTS:
            raise ConfigError(f"aug.components must be one of {list(COMPONENTS)}, got '{components}'")
        if not 0.0 <= replace_prob <= 1.0:
            raise ConfigError(f"aug.replace_prob must be in [0, 1], got {replace_prob}")
        if seam_px < 0:
            raise ConfigError(f"aug.seam_px must be >= 0 (0 = hard edge), got {seam_px}")
        if compose not in COMPOSE_STAGES:
            raise ConfigError(f"aug.compose must be one of {list(COMPOSE_STAGES)}, got '{compose}'")
        if arithmetic not in ARITHMETIC:
            raise ConfigError(f"aug.arithmetic must be one of {list(ARITHMETIC)}, got '{arithmetic}'")
        if arithmetic == "official" and compose != "before_crop":
            raise ConfigError(
                "aug.arithmetic=official repeats the official code's uint8 steps on whole images, which "
                "happens with aug.compose=before_crop only: add aug.compose=before_crop, or use "
                f"aug.arithmetic=exact (got aug.compose={compose})"
            )
        if compose_size != 0 and (compose != "before_crop" or compose_size < 2):
            raise ConfigError(
                "aug.compose_size (compose whole images as N x N squares, as the official code does at 256) "
                f"needs aug.compose=before_crop and N >= 2; got compose={compose}, compose_size={compose_size}"
            )
        if not 0 <= figure_images <= 256:
            raise ConfigError(f"aug.figure_images must be in [0, 256], got {figure_images}")
        if views not in VIEWS:
            raise ConfigError(f"aug.views must be one of {list(VIEWS)}, got '{views}'")
        if views == "arm_only" and (mode == "static_append" or ce_include_original):
            raise ConfigError(
                "aug.views=arm_only trains on draws of aug.components only; it cannot be combined with "
                "aug.mode=static_append (which appends composed images to the originals) or "
                "aug.ce_include_original=true (which adds the original): drop one of them"
            )
        if composed_size not in COMPOSED_SIZES:
            raise ConfigError(
                f"aug.composed_size must be one of {list(COMPOSED_SIZES)}, got '{composed_size}'"
            )
        # Settings of one form of the method, refused where they would change nothing.
        if composed_size != "auto" and compose_size == 0:
            raise ConfigError(
                f"aug.composed_size={composed_size} sets the size of a composed aug.compose_size square, so "
                "it needs aug.compose=before_crop aug.compose_size=N; drop it, or add those"
            )
        if replace_prob != _SCHEMA_DEFAULTS.replace_prob and mode != "replace_p":
            raise ConfigError(
                f"aug.replace_prob={replace_prob} is the share of composed views of aug.mode=replace_p, and "
                f"aug.mode={mode} does not read it; drop it, or add aug.mode=replace_p"
            )
        if static_seed != _SCHEMA_DEFAULTS.static_seed and mode != "static_append":
            raise ConfigError(
                f"aug.static_seed={static_seed} seeds the fixed masks and fractals of aug.mode=static_append, and "
                f"aug.mode={mode} does not read it (its draws follow the run's seed); drop it, or add "
                "aug.mode=static_append"
            )
        if edit_source not in EDIT_SOURCES:
            raise ConfigError(f"aug.edit_source must be one of {list(EDIT_SOURCES)}, got '{edit_source}'")
        if (
            edit_source == "full"
            and ctx.config is not None
            and not ctx.config.generator.get("keep_full_size")
        ):
            raise ConfigError(
                "aug.edit_source=full reads the full-size edits, which the edit store keeps only when "
                "they are generated with generator.keep_full_size=true: add generator.keep_full_size=true "
                "(to this command and to generate.py), or use aug.edit_source=stored"
            )
        if mode == "static_append" and ctx.loss == "jsd":
            raise ConfigError(
                "aug.mode=static_append trains on a fixed set of composed images (the official recipe) "
                "and has no second augmented view for the JSD loss: add loss=ce"
            )
        self.lam = lam
        self.mask_set = masks
        self.kinds = mask_kinds(masks)
        self.seam_px = seam_px
        self.arithmetic = arithmetic
        self.mode = mode
        self.replace_prob = replace_prob
        self.components = components
        self.ce_include_original = ce_include_original
        self.static_seed = static_seed
        self.before_crop = compose == "before_crop"
        self.compose_size = compose_size
        self.figure_images = figure_images
        self.figure_generate = figure_generate
        self.uses_edits = not components.startswith("originals")
        self.uses_masks = components.startswith("hybrid")
        self.uses_fractals = components.endswith("_fractal")
        self.jsd = ctx.loss == "jsd"
        self.arm_only = views == "arm_only"
        self.views = views
        # JSD's three views: [clean original, draw 1, draw 2], or three draws with arm_only.
        self.num_draws = (3 if self.arm_only else 2) if self.jsd else 1
        self.edit_source = edit_source
        self.composed_size = self._resolve_composed_size(composed_size)
        self.resolved["composed_size"] = self.composed_size
        self.num_edits = (1 if mode == "static_append" else self.num_draws) if self.uses_edits else 0
        # The bank is built (generated or read from its cache) when first needed: by prepare(),
        # after the edits are checked, so a bad fractals setting fails before training starts; it
        # moves to the device once, on the first batch.
        self._bank: FractalBank | None = None
        self._warn_wide_seam()
        self._fractals: dict[tuple, torch.Tensor] = {}
        self._templates: dict[tuple, torch.Tensor] = {}
        self._generator: torch.Generator | None = None
        self._pending_state: torch.Tensor | None = None  # restored from a checkpoint, used by _gen
        self._epoch = 0
        self._plan: tuple[torch.Tensor, torch.Tensor] | None = None
        self.train_set: DiffuseMixTrainSet | None = None
        self.store = None
        self._checked: Dataset | None = None  # the training split whose edits prepare() checked

    @property
    def bank(self) -> FractalBank | None:
        """The fractal bank (None for arms without fractals), built on first use."""
        if self._bank is None and self.uses_fractals:
            self._bank = FractalBank.from_config(self._config.fractals, progress_shown(self._config))
            if self._bank.record is not None:  # a folder's pictures: what they were
                self.resolved["fractal_bank"] = self._bank.record
        return self._bank

    def prepare(self, train_set: Dataset) -> None:
        """The edits checked first (a missing store is named within seconds), then the fractal bank
        built (generated on a first run: minutes for a large bank)."""
        if self.uses_edits:
            from ...generation.store import image_files, image_root, split_indices

            files = image_files(train_set, sizes=True)
            self.check_edits(self.edit_store(), split_indices(train_set), files, image_root(train_set))
            self._checked = train_set
            self._warn_small_edits()
        _ = self.bank

    def _warn_small_edits(self) -> None:
        """Edits stored at a shorter side below the one training brings them to (``dataset.resize``,
        or ``aug.compose_size`` where whole images are composed as squares of it) are enlarged when
        read: softer than the image they are mixed with. (Full-size edits, aug.edit_source=full,
        are not the stored ones.)"""
        stored = self.edit_store().settings.get("store_size")
        dataset = self._config.dataset
        if stored is None or self.edit_source == "full":
            return
        if self.before_crop and self.compose_size:
            target, setting = int(self.compose_size), "aug.compose_size"
            fix = f"generator.store_size={target} stores them at that size"
        elif str(dataset.get("train_transform")) in ("resize_crop", "resize"):
            target, setting = int(dataset.resize), "dataset.resize"
            fix = "generator.store_size=auto stores them at dataset.resize"
        else:
            return
        if int(stored) < target:
            log.warning(
                "the edits are stored at a shorter side of %d px (generator.store_size=%s) and training "
                "brings them to %d px (%s): each edit is enlarged when read, softer than the original "
                "it is mixed with. %s (run generate.py with it, then train with it)",
                int(stored),
                self._config.generator.store_size,
                target,
                setting,
                fix,
            )

    def _warn_wide_seam(self) -> None:
        """A seam ramp over half or more of the side the masks are built at (the crop, or
        ``aug.compose_size``) blends the two halves across most of the image."""
        side = self.compose_size if self.before_crop else self.ctx.image_size
        if self.uses_masks and side and self.seam_px * 2 >= side:
            log.warning(
                "aug.seam_px=%d ramps over half or more of the %d px side the masks are built at: the "
                "two halves blend across most of the image (the official code's 20 px seam is at 256 px)",
                self.seam_px,
                side,
            )

    def _resolve_composed_size(self, setting: str) -> str:
        if setting != "auto":
            return setting
        config = self.ctx.config
        kind = config.dataset.get("train_transform") if config is not None and "dataset" in config else None
        return "original" if kind == "pad_crop" else "compose"

    @property
    def _config(self):
        if self.ctx.config is None:
            raise ConfigError(
                "aug=diffusemix needs the run config (AugContext.config) for its store and fractals"
            )
        return self.ctx.config

    # -- data ------------------------------------------------------------------------------
    def edit_store(self):
        """The edit store of this run's dataset (train split), per ``cfg.generator``."""
        if self.store is None:
            from ...generation.store import EditStore

            self.store = EditStore.from_config(self._config, self.ctx.dataset_name, split="train")
        return self.store

    def store_record(self) -> dict | None:
        """What this run read from its edit store (for metrics.json): the folder, its settings hash
        and settings (generator, model, steps, resolution, dtype, template, seed...), the image
        folder its edits were made from (None where the store does not record one), the prompts,
        and which edit was read. None for arms that read no edits."""
        if self.store is None or not self.uses_edits:
            return None
        store = self.store
        made_from = store.images_root()  # (the image folder its edits were made from, as recorded)
        return {
            "folder": str(store.folder),
            "hash": store.folder.name,
            "images_root": str(made_from) if made_from is not None else None,
            "settings": dict(store.settings),
            "prompts": list(store.prompt_ids),
            "num_prompts": len(store.prompt_ids),
            "edit_source": self.edit_source,
        }

    def check_edits(
        self, store, indices: list[int], files: dict[int, list] | None = None, root: Path | None = None
    ) -> None:
        """Raise when the store was made from other images than ``files`` names (see
        ``EditStore.check_images``; ``root``: the folder they are in), or with the count and the
        generate command when any needed edit is missing; a damaged settings.json is named."""
        store.check_settings()
        if files:
            store.check_images(files, root=root)
        missing = store.missing(indices)
        if missing:
            from ...generation.store import MissingEditError, generate_command

            index, prompt_id = missing[0]
            self._missing_for_corrupt_images(store, missing, files, root)
            broken = store.last_broken
            if broken:
                b_index, b_prompt = broken[0]
                more = f" ({len(broken)} of the {len(missing)} are broken, e.g. {store.path(b_index, b_prompt)}: its size differs from the one recorded when it was written)"
                fix = "Repair the store (missing and broken edits are made again):"
            elif len(store.last_unrecorded) == len(missing):
                more = " (their files are there, but the store's manifest, which records each finished edit, lacks them)"
                fix = "This command records them, checking that each file decodes, and makes none that is whole:"
            else:
                more, fix = "", "Generate them first:"
            if not (store.folder / "edits").is_dir():  # no edit made with these settings yet
                where = (
                    f"are missing: the edit store of these settings holds no edit yet ({store.folder}: a "
                    "generate.py run stopped before its first, or is still making it)"
                    if store.folder.is_dir()
                    else f"are missing: no edit store of these settings exists yet ({store.folder})"
                )
                from ...generation.listing import where_stores_are

                edits_dir = store.folder.parents[2]
                near = where_stores_are(edits_dir, None)
                if near and not store.folder.is_dir():  # (the edits folder given a level off)
                    where += f"; generator.edits_dir={edits_dir} is not the folder of stores itself: {near}"
                elsewhere = self._same_store_in_the_default_folder(store)
                if elsewhere is not None:  # made there, this run pointed elsewhere
                    where = (
                        f"are missing: no edit store of these settings exists in generator.edits_dir "
                        f"({store.folder}), but one with edits is in the default edits folder, {elsewhere}: "
                        f"leave generator.edits_dir out (or give generator.edits_dir={elsewhere.parents[2]}) to "
                        "read it"
                    )
            elif broken or more:
                where = f"are not usable in the edit store {store.folder}"
            else:
                where = f"are missing from the edit store {store.folder}"
            few = ""
            first_store = not (store.folder / "edits").is_dir()
            if (
                (first_store or len(missing) >= 1000)
                and not more
                and self._config.dataset.get("samples_per_class") is None
            ):
                # (a debug run trains on a few batches, but reads any image's edits)
                few = (
                    "\n  (To try DiffuseMix on a few images per class first: add dataset.samples_per_class=2, "
                    "say, to both commands; a smaller training split, set apart in reports.)"
                )
            raise MissingEditError(
                f"aug=diffusemix: {len(missing)} of {len(indices) * len(store.prompt_ids)} edits of "
                f"{self.ctx.dataset_name}/train {where} (first: index "
                f"{index}, prompt '{prompt_id}'){more}.{store.other_stores()} {fix}\n  "
                f"{generate_command(self._config, self.ctx.dataset_name)}{few}"
            )

    #: (said where every missing edit was checked to be a corrupt image's)
    OTHERS_THERE = " (its other images' edits are there)"

    def _missing_for_corrupt_images(
        self, store, missing: list, files: dict | None, root: Path | None
    ) -> None:
        """Edits missing for images that do not decode, where this run reads them
        (``dataset.on_bad_image=error``): generate.py given ``dataset.on_bad_image=skip`` made none
        for them, and training with the same setting leaves them out too; said with that fix (the
        generate command alone would stop on the same file)."""
        from ...generation.store import MissingEditError, generate_command, image_decodes

        if not files or root is None or self._config.dataset.get("on_bad_image") == "skip":
            return
        indices = sorted({i for i, _ in missing})
        # (the first and the last ten, read until one decodes: a cheap look, on a refusal's path)
        checked = [i for i in dict.fromkeys(indices[:10] + indices[-10:]) if i in files]
        if not checked or any(image_decodes(Path(root) / files[i][0]) for i in checked):
            return
        corrupt = [Path(root) / files[i][0] for i in checked]
        all_seen = len(checked) == len(indices)
        if not all_seen:  # (the others were not read)
            more = f"; {len(checked)} of the {len(indices)} images lacking edits read, each corrupt"
        else:
            more = f" and {len(indices) - 1} more" if len(indices) > 1 else ""
        raise MissingEditError(
            f"aug=diffusemix: {len(missing)} edits of {self.ctx.dataset_name}/train are missing from the edit store "
            f"{store.folder}, for images that do not decode ({corrupt[0]}{more}): generate.py with "
            "dataset.on_bad_image=skip makes no edits for corrupt images, and training leaves them out with the "
            f"same setting. Add dataset.on_bad_image=skip to this command{self.OTHERS_THERE if all_seen else ''}, "
            "or put intact files back and make their edits: "
            f"{generate_command(self._config, self.ctx.dataset_name)}"
        )

    def _same_store_in_the_default_folder(self, store) -> Path | None:
        """The store of these settings under the default edits folder (``paths.cache_dir``/edits),
        where it holds edits and this run's ``generator.edits_dir`` is another folder; else None."""
        cfg = self._config
        try:
            given = Path(str(cfg.generator.edits_dir)).expanduser().absolute()
            default = Path(str(cfg.paths.cache_dir)).expanduser().absolute() / "edits"
            other = default / store.folder.absolute().relative_to(given)
        except (ValueError, AttributeError, TypeError):
            return None
        return other if given != default and (other / "edits").is_dir() else None

    def train_dataset(self, dataset: Dataset) -> Dataset:
        from ...generation.store import split_indices

        # Lightning asks for the training loader more than once (steps per epoch, then fit):
        # the store is checked once per split.
        if self.train_set is not None and self.train_set.base is dataset:
            return self.train_set
        store_indices = split_indices(dataset)
        static = self.mode == "static_append"
        # static_append needs the prompt list (the number of appended copies) even for arms
        # without edits; only arms with edits need the edits themselves.
        store = self.edit_store() if self.uses_edits or static else None
        if self.uses_edits and self._checked is not dataset:  # prepare() checked it
            from ...generation.store import image_files, image_root

            self.check_edits(store, store_indices, image_files(dataset, sizes=True), image_root(dataset))
        n = len(dataset)
        self._plan = self._static_plan(n * len(store.prompt_ids)) if static else None
        composer = WholeImageComposer(self, self._plan) if self.before_crop else None
        self.train_set = DiffuseMixTrainSet(
            dataset,
            store,
            store_indices,
            self.num_edits,
            static=static,
            composer=composer,
            full_edits=self.edit_source == "full",
        )
        if static:
            prompts = len(store.prompt_ids)
            log.info(
                "DiffuseMix static_append: %d originals + %d composed (%d prompts) = %d training items per "
                "epoch (the official recipe grows the epoch %dx)",
                n,
                n * prompts,
                prompts,
                len(self.train_set),
                1 + prompts,
            )
        else:
            log.info("DiffuseMix %s (%s): %d training images per epoch", self.mode, self.components, n)
        if self.before_crop:
            log.info("DiffuseMix composes whole images in the data workers, before the training crop")
        return self.train_set

    def _static_plan(self, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The fixed mask kind and fractal of every appended (original, prompt) item."""
        g = torch.Generator().manual_seed(self.static_seed)
        masks = torch.randint(len(self.kinds), (size,), generator=g)
        fractals = torch.randint(len(self.bank) if self.bank is not None else 1, (size,), generator=g)
        return masks.to(torch.uint8), fractals.to(torch.int32)

    # -- device step -------------------------------------------------------------------------
    def _gen(self, device: torch.device) -> torch.Generator:
        if self._generator is None or self._generator.device != device:
            rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
            # One stream per process and epoch: DDP ranks never draw the same masks and fractals; a
            # resumed run restores the stream's state from the checkpoint (set_rng_state).
            seed = int(np.random.SeedSequence([self.ctx.seed, rank, self._epoch]).generate_state(1)[0])
            self._generator = torch.Generator(device=device).manual_seed(seed)
            if self._pending_state is not None:
                self._generator.set_state(self._pending_state)
                self._pending_state = None
        return self._generator

    def rng_state(self) -> dict | None:
        return {
            "epoch": self._epoch,
            "state": self._generator.get_state() if self._generator is not None else None,
        }

    def set_rng_state(self, state: dict | None) -> None:
        if not state:
            return
        self._epoch = int(state["epoch"])
        self._generator = None
        self._pending_state = state.get("state")

    def start_epoch(self, epoch: int) -> None:
        """Reseed the device draws for ``epoch`` (called by the training loop at each epoch start)."""
        if epoch != self._epoch:
            self._epoch = epoch
            self._generator = None
            # A state restored from a checkpoint at an epoch's end goes on with the epoch that
            # ended: the new epoch starts from its own seed, as in the uninterrupted run.
            self._pending_state = None

    def _mask_templates(self, height: int, width: int, device: torch.device) -> torch.Tensor:
        key = (height, width, device)
        if key not in self._templates:
            self._templates = {
                key: half_mask_templates(self.kinds, height, width, self.seam_px, device=device)
            }
        return self._templates[key]

    def _fractal_bank(self, height: int, width: int, device: torch.device) -> torch.Tensor:
        """The bank on ``device`` at ``height x width`` (uint8), moved and resized once."""
        key = (height, width, device)
        if key not in self._fractals:
            bank = self.bank.as_tensor()
            # Resized in chunks so the float copy of a large bank never sits in memory at once.
            resized = [
                resize_fractals(bank[i : i + 256].to(device), height, width)
                .mul_(255)
                .round_()
                .to(torch.uint8)
                for i in range(0, len(bank), 256)
            ]
            self._fractals = {key: torch.cat(resized)}
        return self._fractals[key]

    def compose(
        self,
        originals: torch.Tensor,
        edits: torch.Tensor,
        mask_ids: torch.Tensor | None = None,
        fractal_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """One composed view per sample (float [0, 1], N x C x H x W) for this run's component;
        masks and fractals drawn at random unless their ids are given."""
        n, _, h, w = originals.shape
        device = originals.device
        masks = fractals = None
        if self.uses_masks:
            if mask_ids is None:
                mask_ids = torch.randint(len(self.kinds), (n,), generator=self._gen(device), device=device)
            masks = self._mask_templates(h, w, device)[mask_ids.long()]
        if self.uses_fractals:
            if fractal_ids is None:
                fractal_ids = torch.randint(len(self.bank), (n,), generator=self._gen(device), device=device)
            fractals = self._fractal_bank(h, w, device)[fractal_ids.long()].float().div_(255.0)
        return compose_component(self.components, originals, edits, masks, fractals, self.lam)

    def apply(
        self, images: torch.Tensor, targets: torch.Tensor, indices: torch.Tensor, model: nn.Module
    ) -> AugBatch:
        if images.ndim != 5:
            raise ValueError(
                f"aug=diffusemix expects batches of image stacks (N x (1 + edits) x C x H x W) from its "
                f"training set wrapper, got shape {tuple(images.shape)}"
            )
        if self.before_crop:
            # The data workers composed the views already (WholeImageComposer): view-major batch.
            return AugBatch(images.transpose(0, 1).flatten(0, 1), targets, images.shape[1])
        originals = images[:, 0]
        if self.mode == "static_append":
            return AugBatch(self._static_views(images, indices), targets, 1)
        views = []
        for draw in range(self.num_draws):
            edits = images[:, 1 + draw] if self.uses_edits else originals
            view = self.compose(originals, edits)
            if self.mode == "replace_p":
                coin = torch.rand(len(view), generator=self._gen(view.device), device=view.device)
                view = torch.where((coin < self.replace_prob)[:, None, None, None], view, originals)
            views.append(view)
        if self.jsd:
            # AugMix JSD: [clean, view 1, view 2], view-major; arm_only: three draws of the arm.
            return AugBatch(torch.cat(views if self.arm_only else [originals] + views), targets, 3)
        if self.ce_include_original:
            return AugBatch(torch.cat([originals, views[0]]), targets, 2)
        return AugBatch(views[0], targets, 1)

    def _static_views(self, images: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        """Originals pass through; each appended item gets its fixed mask and fractal."""
        originals = images[:, 0]
        n = len(self.train_set.base)
        appended = (indices >= n).to(originals.device)
        slot = (indices.to(originals.device) - n).clamp_(min=0)
        if self._plan[0].device != originals.device:
            # Moved once: the plan has one entry per appended item (N x prompts).
            self._plan = tuple(p.to(originals.device) for p in self._plan)
        plan_masks, plan_fractals = self._plan
        edits = images[:, 1] if self.uses_edits else originals
        composed = self.compose(originals, edits, plan_masks[slot], plan_fractals[slot])
        return torch.where(appended[:, None, None, None], composed, originals)

    # -- figure ------------------------------------------------------------------------------
    def callbacks(self) -> list:
        # Lightning is imported when training starts, not when the config is composed.
        from .callbacks import DiffuseMixEpochCallback, DiffuseMixFigureCallback

        callbacks: list = [DiffuseMixEpochCallback(self)]
        # The figure shows edits: arms without them (originals, originals_fractal) have none to show.
        if self.figure_images > 0 and self.uses_edits:
            callbacks.append(DiffuseMixFigureCallback(self))
        return callbacks
