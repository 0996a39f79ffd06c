"""A resumed run is the same run: its settings are checked against the ones its folder saved.

Light to import (torch only to read a checkpoint's step): train.py checks a resume before Hydra
writes anything into the run folder (``cli.StartChecks``), and ``training.run.train`` checks it again for callers of the API."""

from __future__ import annotations

import json
from contextlib import suppress
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from ..commands import quoted_arg, saved_resume_command, script_command, sweep_command
from ..config import with_added_settings
from ..data.order import LIMITED_EVAL_ORDER
from ..errors import ConfigError, in_multirun
from .locate import load_saved_config, run_folder_of

# Settings a resumed run may change: where things are and how many devices, how long it goes on,
# and what is evaluated or shown after; everything else must be what the interrupted run used.
RESUME_MAY_CHANGE = (
    "ckpt_path",
    "paths.",
    "trainer.max_epochs",
    "trainer.max_steps",
    "trainer.devices",
    "trainer.num_nodes",
    "trainer.accelerator",
    "dataset.num_workers",
    "dataset.eval_batch_size",
    "dataset.root",
    # (where paths.cache_dir puts the fractal bank and the edit stores: their contents are named by
    # the settings that made them)
    "fractals.cache_dir",
    "generator.edits_dir",
    "generator.revision",  # which hub commit generate.py loads: the store is the same, and guards it
    "callbacks.progress_bar",
    "callbacks.checkpoint_every_n_steps",
    "callbacks.lr_monitor",
    "trainer.enable_progress_bar",
    "trainer.enable_model_summary",
    "trainer.log_every_n_steps",
    "print_config",
    "logger.",
    "run_test",
    "eval.",
    "tags",
    "paper.",  # the experiment file's record of the paper's table (caption, numbers): not trained on
)


def _flatten(node, prefix: str = "") -> dict:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: node}


def _short(value, limit: int = 60) -> str:
    """A setting's value for a message: its repr, cut short (a table of numbers is not read there)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + " ..."


def check_resume_matches(cfg: DictConfig, saved_config: Path, given: str | None = None) -> None:
    """A resume (ckpt_path set, in a run folder that holds config_resolved.yaml) continues the same
    run: refuse settings that differ from the saved ones, naming them."""
    differ = settings_differ(cfg, saved_config)
    if differ:
        shown = "; ".join(differ[:8]) + (f"; and {len(differ) - 8} more" if len(differ) > 8 else "")
        own = saved_resume_command(saved_config.parent, f"ckpt_path={given or cfg.ckpt_path}")
        raise ConfigError(
            f"ckpt_path={given or cfg.ckpt_path} resumes the run in {saved_config.parent}, which was trained with other "
            f"settings ({shown}). Give the same settings as that run"
            + (f", as its own command did: {own}" if own else f" (they are in {saved_config})")
            + (
                # (a sweep's jobs share its folder: another sweep folder holds these settings' jobs)
                ", or launch the sweep with these settings into a sweep folder of its own "
                "(hydra.sweep.dir=<another folder>)"
                if in_multirun()
                else ", or start a new run folder without ckpt_path"
            )
        )


#: Settings an earlier attempt's record leaves out: where things are, devices, what is shown (its
#: epochs, evaluation and the rest are named: they are part of what the attempt tried).
ATTEMPT_MAY_DIFFER = (
    "ckpt_path",
    "paths.",
    "trainer.devices",
    "trainer.num_nodes",
    "trainer.accelerator",
    "dataset.num_workers",
    "callbacks.progress_bar",
    "trainer.enable_progress_bar",
    "trainer.enable_model_summary",
    "print_config",
    "logger.",
    "tags",
)


def settings_differ(
    cfg: DictConfig, saved_config: Path, may_change: tuple[str, ...] = RESUME_MAY_CHANGE
) -> list[str]:
    """The settings (``key: saved -> now``) in which ``cfg`` differs from a run folder's saved
    ones, leaving out ``may_change`` (by default those a resume may change); a saved file cut
    short or edited by hand is refused (ConfigError)."""
    # Cut short, or edited by hand: said so, not "other settings" key by key.
    loaded = load_saved_config(saved_config, needs=("dataset", "model", "aug", "optim", "trainer", "seed"))
    # A setting added since the run started is read with the value that gives what it ran with.
    saved = _flatten(OmegaConf.to_container(with_added_settings(loaded), resolve=False))
    now = _flatten(OmegaConf.to_container(cfg, resolve=True))
    if saved.get("aug.name") != "diffusemix" and now.get("aug.name") == saved.get("aug.name"):
        # A method that reads no edits: the generator's settings play no part in its run.
        may_change = (*may_change, "generator.")
    keys = [
        key
        for key in sorted(set(saved) | set(now))
        if saved.get(key) != now.get(key) and not key.startswith(may_change)
    ]
    # Another choice of a group (aug=mixup for aug=none) is named once, not key by key.
    other_choice = {key.rsplit(".", 1)[0] + "." for key in keys if key.endswith(".name")}
    return [
        f"{key}: {_short(saved.get(key))} -> {_short(now.get(key))}"
        for key in keys
        if key.endswith(".name") or not key.startswith(tuple(other_choice))
    ]


def keep_earlier_attempt(cfg: DictConfig, run_dir: Path) -> dict | None:
    """A new run in a folder where a run failed or diverged before its first checkpoint (a sweep
    launched again with another learning rate, a job refused at its start): the attempt's record
    (failure.json, its settings, its summary.csv and logger files) moves to ``attempts/<n>/`` with ``attempt.json``
    (status, error, the settings that differ from this run's) instead of being overwritten, so
    the folder still says what was tried. Returns the attempt's record, or None."""
    import shutil

    from ..files import ATTEMPTS_DIR, write_atomic

    failure = run_dir / "failure.json"
    if not failure.is_file():
        return None
    try:
        record = json.loads(failure.read_text())
    except (OSError, ValueError):
        record = None
    record = record if isinstance(record, dict) else {"error": "failure.json cannot be read"}
    saved = run_dir / "config_resolved.yaml"
    try:
        differ = settings_differ(cfg, saved, ATTEMPT_MAY_DIFFER) if saved.is_file() else None
    except ConfigError:  # its settings cut short or edited: kept as they are, not compared
        differ = None
    numbers = [int(p.name) for p in (run_dir / ATTEMPTS_DIR).glob("*") if p.name.isdigit()]
    last = run_dir / ATTEMPTS_DIR / str(max(numbers, default=0))
    if numbers and (last / "attempt.json").is_file() and not (last / "failure.json").exists():
        # An earlier start recorded this attempt and was stopped before moving its files: its
        # record is completed, not made twice.
        dest = last
        with suppress(OSError, ValueError):
            kept = json.loads((last / "attempt.json").read_text())
            differ = kept.get("settings_differ", differ) if isinstance(kept, dict) else differ
    else:
        dest = run_dir / ATTEMPTS_DIR / str(max(numbers, default=0) + 1)
    dest.mkdir(parents=True, exist_ok=True)
    attempt = {
        "status": str(record.get("status", "failed")),
        "error": record.get("error"),
        "time": record.get("time"),
        "settings_differ": differ,  # null: its settings were not saved, or cannot be read
    }
    # The record first: a kill between the moves leaves the failure.json for the next start to keep.
    write_atomic(dest / "attempt.json", json.dumps(attempt, indent=2) + "\n")
    # TensorBoard writes into the run folder itself (its event files and hparams.yaml).
    logged = [p.name for p in run_dir.glob("events.out.tfevents*")] + ["hparams.yaml"]
    moved = [("summary.csv", "summary.csv"), ("logs", "logs"), *((n, n) for n in logged)]
    for name, kept in (*moved, ("config_resolved.yaml", "settings.yaml")):
        if (run_dir / name).exists():
            shutil.move(run_dir / name, dest / kept)
    shutil.move(failure, dest / "failure.json")
    return {"folder": str(dest.relative_to(run_dir)), **attempt}


def check_settings_kept(cfg: DictConfig, run_dir: Path, given: str | None = None) -> None:
    """A resume in a run folder with checkpoints but without config_resolved.yaml is refused (after
    the checkpoint was found readable): every run writes its settings before its first checkpoint,
    and without them a resume under other settings (another method, learning rate) would go on
    unnoticed."""
    if cfg.ckpt_path is None or (run_dir / "config_resolved.yaml").is_file():
        return
    if any((run_dir / "checkpoints").glob("*.ckpt")):
        raise ConfigError(
            f"ckpt_path={given or cfg.ckpt_path} resumes the run in {run_dir}, whose config_resolved.yaml (the "
            "settings it was trained with, written when it started) is gone, so this command's settings cannot "
            "be checked against them. Restore the file from a copy, or train a new run in another folder (its "
            "weights alone: model.weights=<one of its checkpoints>)"
        )


def resolve_auto_resume(cfg: DictConfig, run_dir: Path) -> bool:
    """``ckpt_path=auto``: ``last`` when the run folder has a last checkpoint, else a new run (None).
    Returns whether it was auto."""
    if cfg.ckpt_path != "auto":
        return False
    with open_dict(cfg):
        cfg.ckpt_path = "last" if (run_dir / "checkpoints" / "last.ckpt").is_file() else None
    return True


def check_resume(cfg: DictConfig, run_dir: Path, given: str | None = None) -> None:
    """Refuse a resume (``ckpt_path`` set, ``auto`` resolved) from a checkpoint that is not there,
    or into a run folder saved with other settings, or into one whose saved settings are gone; a
    new run passes. ``given``: the value on the command line (auto, before it was resolved)."""
    given = given or cfg.ckpt_path
    if cfg.ckpt_path is None:
        check_no_earlier_run(run_dir, given)
    if given == "last" and not (run_dir / "checkpoints" / "last.ckpt").is_file():
        raise ConfigError(
            f"ckpt_path=last but {run_dir / 'checkpoints' / 'last.ckpt'} does not exist. Resume in the run "
            f"folder that holds it: {script_command('train.py')} ... hydra.run.dir=<that run folder> ckpt_path=last "
            "(ckpt_path=auto resumes when there is one and starts a new run when there is none)"
        )
    check_checkpoint_given(given)
    saved = run_dir / "config_resolved.yaml"
    if cfg.ckpt_path is not None and cfg.ckpt_path != "auto" and saved.is_file():
        check_resume_matches(cfg, saved, given)

    if given not in (None, "auto", "last"):
        # A checkpoint file of another run folder would resume that run elsewhere: under other
        # settings unchecked (this folder has none saved), and with its best checkpoint left in
        # (and replaced from) the other folder.
        source = run_folder_of(Path(str(given)).expanduser())
        if (source / "config_resolved.yaml").is_file() and source.resolve() != run_dir.resolve():
            raise ConfigError(
                f"ckpt_path={given} is a checkpoint of the run in {source}, not of this run folder "
                f"({run_dir}). Resume that run in its own folder: {quoted_arg('hydra.run.dir', str(source))} "
                f"ckpt_path={given} with its settings (in {source / 'config_resolved.yaml'}); or train "
                f"a new run from its weights alone with model.weights={given} instead of ckpt_path"
            )


def check_checkpoint_given(given: str | None) -> None:
    """``ckpt_path`` is last, auto or a checkpoint file that is there (a value close to last or
    auto, lats or Last, is named as the one meant)."""
    if given in (None, "auto", "last") or Path(str(given)).expanduser().is_file():
        return
    from ..errors import did_you_mean

    hint = (
        did_you_mean(str(given).lower(), ["last", "auto"], n=1, said_as="ckpt_path={}")
        if "/" not in str(given)
        else ""
    )
    raise ConfigError(
        f"ckpt_path={given} is not a file{hint or '.'} ckpt_path takes last (the run folder's last.ckpt), auto (last.ckpt "
        "when the run folder has one, else a new run) or the path of a checkpoint file"
    )


def check_no_earlier_run(run_dir: Path, given: str | None) -> None:
    """A new run (no ckpt_path, or ``auto`` that found no last.ckpt) is refused in a folder that
    holds an earlier run's checkpoints or results: training there would overwrite them (and leave
    the earlier run's best checkpoint beside the new one's)."""
    from ..errors import in_multirun

    kept = sorted(f"checkpoints/{p.name}" for p in (run_dir / "checkpoints").glob("*.ckpt"))
    listed = ", ".join(kept[:3]) + (f" and {len(kept) - 3} more" if len(kept) > 3 else "")
    last = "checkpoints/last.ckpt" in kept
    sweep = in_multirun()
    anew = (
        "run the sweep anew in another folder (hydra.sweep.dir=<new folder>) or remove this one"
        if sweep
        else "train anew in another folder (hydra.run.dir=<new folder>) or remove this one"
    )
    go_on = "the same command with ckpt_path=last"
    if sweep:
        command = sweep_command()
        go_on = (
            command if command else "the sweep's command with ckpt_path=auto and hydra.sweep.dir=<its folder>"
        )
    if (run_dir / "metrics.json").is_file():
        held = "a finished run (metrics.json" + (f", {listed})" if kept else ")")
        if last:
            advice = f"To train this run longer, run {go_on} and a larger trainer.max_epochs; or {anew}"
            if sweep:  # (the same sweep launched again: its finished jobs need nothing)
                advice = (
                    f"Run {go_on}: with ckpt_path=auto it leaves the sweep's finished jobs as they are and "
                    f"trains the others (with a larger trainer.max_epochs, this run longer); or {anew}"
                )
        else:
            advice = f"It has no checkpoints/last.ckpt to go on from (callbacks.save_last=false, or fast_dev_run): {anew}"
    elif kept and _failure_status(run_dir) == "diverged":
        # A resume goes on with the settings that diverged (a lower learning rate is other settings).
        held = f"a run that diverged (failure.json; {listed})"
        keeps = (
            f"Going on with it ({go_on}) keeps the settings that diverged; to train with others, "
            if last
            else ""
        )
        advice = f"{keeps}{anew}" if keeps else anew[0].upper() + anew[1:]
    elif kept:
        held = f"an unfinished run ({listed})"
        if last:
            advice = f"Go on with it: {go_on}; or {anew}"
        else:
            advice = f"It has no checkpoints/last.ckpt to go on from: {anew}"
    else:
        return
    found = " and ckpt_path=auto found no checkpoints/last.ckpt to go on from" if given == "auto" else ""
    if found:
        advice = anew[0].upper() + anew[1:]
    raise ConfigError(f"{run_dir} holds {held}{found}: a new run there would overwrite it. {advice}")


def _failure_status(run_dir: Path) -> str | None:
    """failure.json's status (diverged or failed), or None."""
    try:
        record = json.loads((run_dir / "failure.json").read_text())
    except (OSError, ValueError):
        return None
    return record.get("status") if isinstance(record, dict) else None


#: failure.json's mark of a finished run being trained further (see training.run.train).
TRAINED_FURTHER = "trained_further"


def trained_further(run_dir: Path) -> bool:
    """Whether the run folder's failure.json says a part training it further has begun and not
    finished (its metrics.json is then the earlier part's, its settings the longer run's)."""
    try:
        record = json.loads((run_dir / "failure.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and bool(record.get(TRAINED_FURTHER))


def finished_metrics(cfg: DictConfig, run_dir: Path, step: int | None) -> dict | None:
    """The run folder's metrics.json when it records the weights a resume starts from, trained to
    the end this resume asks for: the run has finished (same optimizer steps as the checkpoint, and
    the same ``trainer.max_epochs`` and ``trainer.max_steps`` as the run saved); else None."""
    path, saved = run_dir / "metrics.json", run_dir / "config_resolved.yaml"
    if step is None or not path.is_file() or not saved.is_file() or trained_further(run_dir):
        return None
    try:
        metrics = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    trainer = load_saved_config(saved).get("trainer", {})
    same_end = all(trainer.get(key) == cfg.trainer.get(key) for key in ("max_epochs", "max_steps"))
    return metrics if same_end and metrics.get("optimizer_steps") == step else None


def asks_more(cfg: DictConfig, earlier: dict, attacks: list) -> bool:
    """Whether a resume of a finished run asks for a number its metrics.json lacks: the test split
    (``run_test=true`` after a run without it), or an attack at settings or on a split not measured."""
    if cfg.run_test and earlier.get("test_top1") is None and earlier.get("test_images"):
        return True
    return any(
        earlier.get(f"{spec.name}_settings") != spec.settings()
        or earlier.get("robust_split") != cfg.eval.split
        or earlier.get("robust_limit_batches") != cfg.eval.get("limit_batches")  # a short check
        # (a short check's first batches taken in the split's own order, before they took the
        # classes in turn)
        or (
            cfg.eval.get("limit_batches") is not None
            and earlier.get("robust_limit_order") != LIMITED_EVAL_ORDER
        )
        for spec in attacks
    )


def nothing_to_do(run_dir: Path, earlier: dict) -> str:
    """The message of a resume with nothing to do. A failure.json beside the finished run's
    metrics.json (a later part that only evaluated it, stopped: its numbers were not written) is
    removed, said here: the folder holds the finished run, as reports and sweep summaries then read
    it. (finished_metrics has ruled out a part training it further.)"""
    stopped = run_dir / "failure.json"
    note = ""
    if stopped.is_file():
        stopped.unlink(missing_ok=True)
        note = (
            " (failure.json, left by a later part that evaluated it and stopped before writing its numbers, is "
            "removed: metrics.json holds the finished run's)"
        )
    # An attack it has not had (FGSM, then PGD); where it has both, the attack at another budget.
    attack = next((f"eval.{a}=true" for a in ("fgsm", "pgd") if f"{a}_error" not in earlier), None)
    # (evaluate.py attacks the test split; a run whose data had none, its validation split)
    split = " eval.split=val" if earlier.get("test_images") == 0 else ""
    attack_it = (
        f"to attack it, {script_command('evaluate.py')} {quoted_arg('ckpt', str(run_dir))} {attack}{split}"
        if attack
        else f"it has FGSM and PGD errors; to attack it otherwise, {script_command('evaluate.py')} "
        f"{quoted_arg('ckpt', str(run_dir))} eval.fgsm=true eval.eps=<budget in 1/255>{split}"
    )
    return (
        f"The run in {run_dir} has finished{note}: its metrics.json holds its {_count(earlier.get('epochs'), 'epoch')} "
        f"({_count(earlier.get('optimizer_steps'), 'optimizer step')}). Nothing to do. To train it longer, resume "
        f"with a larger trainer.max_epochs; {attack_it}"
    )


def _count(n, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def checkpoint_step(path: Path) -> int:
    """The optimiser step a checkpoint was taken at (weights-only, memory-mapped: nothing is read
    in full)."""
    import torch

    return int(torch.load(path, map_location="cpu", weights_only=True, mmap=True).get("global_step", 0))
