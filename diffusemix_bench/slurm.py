"""A sweep submitted to SLURM (``hydra/launcher=slurm``) checked before anything is submitted: the
launcher and SLURM's commands present, and each job's tasks against its trainer's devices."""

from __future__ import annotations

import shutil

from omegaconf import OmegaConf

from .compose import compose_raw
from .errors import ConfigError


def check_slurm(argv: list[str], config_dir: str | None = None, config_name: str = "config") -> None:
    """``hydra/launcher=slurm`` submits each job with ``sbatch``: where SLURM is not (a laptop, a
    node without its commands), one message instead of submitit's error from deep in a sweep. With
    ``config_dir``, also the job's tasks against its trainer's devices (check_slurm_tasks)."""

    if "hydra/launcher=slurm" not in argv:
        return
    if any(a in ("-c", "--cfg") or a.startswith("--cfg=") for a in argv):  # printing settings submits nothing
        return
    if not any(a in ("-m", "--multirun") for a in argv):  # else Hydra runs the one job here, unsaid
        raise ConfigError(
            "hydra/launcher=slurm submits the jobs of a sweep and applies only with --multirun (it was "
            "ignored: this command would run here, on this machine); add --multirun (one run is a sweep "
            "of one job), or leave hydra/launcher=slurm out"
        )
    try:
        import hydra_plugins.hydra_submitit_launcher  # noqa: F401
    except ImportError:
        raise ConfigError(
            "hydra/launcher=slurm needs the submitit launcher, which this environment lacks: install it "
            "with `uv sync --locked --extra dev --extra slurm`, or leave hydra/launcher=slurm out to run "
            "the jobs on this machine"
        ) from None
    absent = [command for command in ("sbatch", "srun") if shutil.which(command) is None]
    if absent:
        raise ConfigError(
            f"hydra/launcher=slurm submits the jobs with SLURM's sbatch and runs them with srun, and this "
            f"machine does not have {' or '.join(absent)}: run the command on the cluster's login node, or "
            "leave hydra/launcher=slurm out to run the jobs on this machine"
        )
    check_slurm_tasks(argv, config_dir, config_name)
    if "ckpt_path=auto" not in argv:
        print(
            "note: without ckpt_path=auto a job SLURM requeues (preemption, time limit) after its first "
            "checkpoint is refused, its folder holding an unfinished run, instead of resuming from its "
            "last.ckpt; add ckpt_path=auto",
            flush=True,
        )


def check_slurm_tasks(argv: list[str], config_dir: str | None, config_name: str = "config") -> None:
    """On SLURM, Lightning starts no processes itself: it trains with one process per SLURM task and
    refuses, on the node, a job whose devices per node differ from its tasks per node (or whose
    ``num_nodes`` differs from its nodes). That refusal came from every job of the sweep after it
    waited in the queue; here it is one message before anything is submitted. Each value a sweep
    gives ``trainer`` or ``hydra.launcher`` settings is checked; of other settings, the first."""
    if config_dir is None:
        return
    import itertools

    from hydra.core.override_parser.overrides_parser import OverridesParser

    overrides = [a for a in argv if not a.startswith("-") and "=" in a]
    choices = []
    for o in OverridesParser.create().parse_overrides(overrides):
        key = o.get_key_element().lstrip("+~")
        if not o.is_sweep_override():
            choices.append([o.input_line])
            continue
        values = [f"{o.get_key_element()}={v}" for v in o.sweep_string_iterator()]
        choices.append(values if key.startswith(("trainer", "hydra.launcher")) else values[:1])
    for plain in itertools.product(*choices):
        _check_slurm_job(list(plain), config_dir, config_name)


def _device_count(t, gpus: int) -> int | None:
    """The devices a SLURM job's trainer settings ``t`` ask for on a node of ``gpus`` GPUs; None
    for a form Lightning parses itself ("0,1")."""

    devices = t.get("devices", "auto")
    if OmegaConf.is_list(devices):
        return len(devices)
    if devices in ("auto", -1, "-1") and t.get("accelerator", "auto") in ("auto", "gpu", "cuda"):
        return gpus or 1  # every GPU SLURM gives the job (one where it asks for none: Lightning's CPU)
    if isinstance(devices, int) and devices > 0:
        return devices
    return None


def _slurm_devices(plain: list[str], config_dir: str, config_name: str) -> int | None:
    """The devices of a SLURM job composed from ``plain`` (None where not known)."""

    try:
        cfg = compose_raw(config_dir, config_name, plain, hydra_config=True)
        gpus = OmegaConf.select(cfg, "hydra.launcher.gpus_per_node", default=None) or 0
        return _device_count(cfg.trainer, gpus)
    except Exception:
        return None


def _check_slurm_job(plain: list[str], config_dir: str, config_name: str) -> None:
    """check_slurm_tasks for one job's settings."""

    try:
        cfg = compose_raw(config_dir, config_name, plain, hydra_config=True)
        launcher = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    except Exception:  # a composition error is preflight's to report
        return
    t = cfg.trainer
    _check_slurm_counts(launcher, t)
    tasks = launcher.get("tasks_per_node") or 1
    gpus = launcher.get("gpus_per_node") or 0
    devices = t.get("devices", "auto")
    count = _device_count(t, gpus)
    if count is None:
        return  # a form Lightning parses itself ("0,1"); not guessed here
    given = "trainer.devices=" + str(
        OmegaConf.to_container(devices) if OmegaConf.is_list(devices) else devices
    )
    # On SLURM, Lightning runs one process per task and starts none itself: a single-device trainer
    # in each of several tasks trains the whole run at once, every task into the same run folder;
    # DDP (Lightning's SLURM check) refuses the job on its node.
    if count == 1:
        outcome = (
            "so every job would go wrong on its node: a trainer of one device in each task trains the whole run, "
            "the tasks at once into the same run folder"
        )
    else:
        outcome = (
            "so every job would fail on its node: Lightning's DDP refuses devices that differ from the tasks"
        )
    if count != tasks:
        if tasks != (gpus or 1):  # tasks_per_node given apart from the GPUs
            fix = (
                f"give hydra.launcher.tasks_per_node={count} (one task per device), or leave it out (one task per "
                "GPU of hydra.launcher.gpus_per_node)"
            )
        else:
            # trainer=ddp uses every GPU of the node unless trainer.devices says fewer; trainer=gpu's
            # own value is one device, so leaving trainer.devices out of it is refused again.
            group = OmegaConf.select(cfg, "hydra.runtime.choices.trainer", default=None)
            if count > 1 and _slurm_devices(
                [o for o in plain if not o.lstrip("+~").startswith("trainer.devices=")],
                config_dir,
                config_name,
            ) == (gpus or 1):
                every = f"leave trainer.devices out (trainer={group}: every GPU of the node, one task each)"
            elif count > 1:
                every = (
                    "give trainer=ddp and leave trainer.devices out (every GPU of the node, one task each)"
                )
            else:
                every = "give trainer=ddp (every GPU of the node, one task each)"
            fix = (
                f"{every}, or hydra.launcher.gpus_per_node={count} to ask SLURM for {count} "
                f"GPU{'s' if count != 1 else ''} per job"
            )
        raise ConfigError(
            f"hydra.launcher.tasks_per_node={tasks} (hydra.launcher.gpus_per_node={gpus or None}) and {given} "
            f"({count} device{'s' if count != 1 else ''}): on SLURM, Lightning runs one process per task, "
            f"{outcome}; {fix}"
        )
    nodes = launcher.get("nodes") or 1
    if nodes != t.get("num_nodes", 1):
        raise ConfigError(
            f"hydra.launcher.nodes={nodes} and trainer.num_nodes={t.get('num_nodes', 1)}: on SLURM, Lightning runs "
            f"one process per task on each node, {outcome}; give both the same value "
            f"(trainer.num_nodes={nodes}, or hydra.launcher.nodes={t.get('num_nodes', 1)})"
        )


def _check_slurm_counts(launcher: dict, t) -> None:
    """A SLURM job's counts themselves: GPUs per node a count (0: none), at least one task per node
    (tasks_per_node follows gpus_per_node unless given: 0 GPUs would ask for 0 tasks, which SLURM
    refuses), and GPUs on the node where the trainer trains on one."""
    gpus, tasks = launcher.get("gpus_per_node"), launcher.get("tasks_per_node")
    if gpus is not None and (not isinstance(gpus, int) or gpus < 0):
        raise ConfigError(
            f"hydra.launcher.gpus_per_node={gpus}: give the number of GPUs each job asks SLURM for on a node (0 for "
            "none)"
        )
    if tasks is not None and (not isinstance(tasks, int) or tasks < 1):
        follows = " (it follows hydra.launcher.gpus_per_node unless given)" if tasks == gpus else ""
        raise ConfigError(
            f"hydra.launcher.tasks_per_node={tasks}{follows}: SLURM runs at least one task per node; give "
            "hydra.launcher.tasks_per_node=1 for a job on one process"
        )
    if not gpus and t.get("accelerator") in ("gpu", "cuda"):
        raise ConfigError(
            f"trainer.accelerator={t.get('accelerator')} trains on GPUs and hydra.launcher.gpus_per_node={gpus} "
            "asks SLURM for none: every job would fail on its node; give hydra.launcher.gpus_per_node=<GPUs per "
            "node>, or train on CPUs (trainer.accelerator=cpu, hydra.launcher.gpus_per_node=0 "
            "hydra.launcher.tasks_per_node=1)"
        )
