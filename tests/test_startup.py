"""Help, config printing, config errors and a missing dataset answer without importing torch (the
training and generation stacks load after these checks); benchmarks/startup.py times them."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import pytest

from tests.conftest import ROOT, run_entry


def imports_of(script: str, args: list[str], cwd) -> tuple[subprocess.CompletedProcess, set[str]]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [sys.executable, "-X", "importtime", str(ROOT / script), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    modules = {
        line.rsplit("|", 1)[1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:")
    }
    return result, modules


@pytest.mark.parametrize(
    ("script", "args", "code", "expected"),
    [
        ("train.py", ["--help"], 0, "== Configuration groups =="),
        ("train.py", ["--cfg", "job", "aug=diffusemix"], 0, "lam: 0.2"),
        ("train.py", ["aug=diffuesmix"], 1, "did you mean diffusemix?"),
        ("train.py", ["dataset=cub", "paths.data_dir={tmp}/none"], 1, "Dataset 'cub' not found"),
        # A method's fixed choice is checked before the data is read (which can take minutes).
        (
            "train.py",
            ["aug=comixup", "aug.solver=gcoo", "dataset=cub", "paths.data_dir={tmp}/none"],
            1,
            "aug.solver of aug=comixup must be one of gco, python; got 'gcoo'",
        ),
        ("generate.py", ["--help"], 0, "generator: ip2p, ip2p_deepcache, ip2p_fast, tiny"),
        ("generate.py", ["generator.scheduler=eulr"], 1, "generator.scheduler must be one of"),
        (
            "figure4.py",
            ["datset=cub"],
            1,
            "error: datset: the top level has no setting 'datset'; did you mean dataset?",
        ),
        ("figure4.py", ["dataset=cub", "paths.data_dir={tmp}/none"], 1, "Dataset 'cub' not found"),
        ("evaluate.py", ["eval.fgsm=true"], 1, "evaluate.py needs ckpt="),
        # Only the groups evaluate.py takes (not train.py's, which it refuses).
        ("evaluate.py", ["--help"], 0, "(group=option)\n\neval: default\n\n== Config =="),
        ("evaluate.py", ["ckpt={tmp}/none", "eval.fgsm=true"], 1, "does not exist; give a run folder"),
        (
            "generate.py",
            ["dataset=flowers102", "paths.data_dir={tmp}/none"],
            1,
            "Dataset 'flowers102' not found",
        ),
    ],
)
def test_early_answers_import_no_torch(tmp_path, script, args, code, expected):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args + [f"hydra.run.dir={tmp_path}/run"]]
    if "--help" in args or "--cfg" in args:
        args = args[:-1]  # no run folder is made for these
    result, modules = imports_of(script, args, tmp_path)
    assert result.returncode == code, result.stderr[-2000:]
    assert expected in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "torch" not in modules and "diffusemix_bench.cli" in modules


def _taken_or_refused_by_both(cfg, settings: dict, refused: str | None) -> None:
    """Set ``settings`` on the composed ``cfg`` (put back after: a merge per value would copy it
    all); then start-up's check and the method's implementation both refuse it, naming the setting
    ``refused``, or both take it (``refused=None``)."""
    from omegaconf import OmegaConf

    from diffusemix_bench.augment import AugContext, create_aug
    from diffusemix_bench.augment.registry import resolve_loss
    from diffusemix_bench.config import validate_config
    from diffusemix_bench.errors import ConfigError

    before = {key: OmegaConf.select(cfg, key) for key in settings}
    for key, value in settings.items():
        OmegaConf.update(cfg, key, value)
    try:
        loss = resolve_loss(cfg)
        ctx = AugContext(
            num_classes=10, dataset_name="cifar100", image_size=32, seed=0, loss=loss, config=cfg
        )
        if refused is None:
            validate_config(cfg)
            create_aug(cfg.aug, ctx)
        else:
            with pytest.raises(ConfigError, match=rf"{re.escape(refused)}\b"):
                validate_config(cfg)
            with pytest.raises(ConfigError, match=rf"{re.escape(refused)}\b"):
                create_aug(cfg.aug, ctx)
    finally:
        for key, value in before.items():
            OmegaConf.update(cfg, key, value)


def test_every_fixed_choice_of_a_method_is_its_implementations_and_checked_at_start_up():
    """The choices a method's schema declares (config.one_of) are what its implementation accepts:
    each is taken by both, and any other value is refused by both, naming the setting."""
    from dataclasses import fields

    from diffusemix_bench.config import AUG_SCHEMAS
    from tests.conftest import compose_config

    # Values that need a companion setting to be usable at all.
    companions = {
        ("diffusemix", "edit_source", "full"): {"generator.keep_full_size": True},
        ("diffusemix", "arithmetic", "official"): {"aug.compose": "before_crop"},
        ("diffusemix", "composed_size", "original"): {"aug.compose": "before_crop", "aug.compose_size": 64},
        ("diffusemix", "composed_size", "compose"): {"aug.compose": "before_crop", "aug.compose_size": 64},
    }
    checked = 0
    for name, schema in AUG_SCHEMAS.items():
        choice_fields = [f for f in fields(schema) if f.metadata.get("choices")]
        if not choice_fields:
            continue
        cfg = compose_config(["dataset=cifar100", f"aug={name}"])
        for f in choice_fields:
            for value in (*f.metadata["choices"], "bogus"):
                settings = {f"aug.{f.name}": value, **companions.get((name, f.name, value), {})}
                _taken_or_refused_by_both(cfg, settings, f"aug.{f.name}" if value == "bogus" else None)
                checked += 1
    assert checked >= 70


def test_every_range_of_a_method_is_its_implementations_and_checked_at_start_up():
    """The ranges a method's schema declares (config.bounded) are what its implementation accepts:
    each bound is taken by both, and a value just outside is refused by both, naming the setting;
    train.py refuses it before any data is read."""
    from dataclasses import fields

    from diffusemix_bench.config import AUG_SCHEMAS
    from tests.conftest import compose_config

    # Settings whose range depends on another one, set so that the bound itself is usable.
    companions = {
        ("randaugment", "num_magnitude_bins"): {"aug.magnitude": 0},
        ("diffusemix", "replace_prob"): {"aug.mode": "replace_p"},
    }
    checked = set()
    for name, schema in AUG_SCHEMAS.items():
        bounded_fields = [f for f in fields(schema) if f.metadata.get("bounds")]
        if not bounded_fields:
            continue
        cfg = compose_config(["dataset=cifar100", f"aug={name}"])
        for f in bounded_fields:
            low, high, above = f.metadata["bounds"]
            step = 1 if "int" in str(f.type) else 0.1
            outside = [v for v in (above, low - step if low is not None else None) if v is not None]
            outside += [high + step] if high is not None else []
            inside = [v for v in (low, high) if v is not None]
            for value in outside + inside:
                settings = {f"aug.{f.name}": value, **companions.get((name, f.name), {})}
                _taken_or_refused_by_both(cfg, settings, f"aug.{f.name}" if value in outside else None)
                checked.add((name, f.name, value))
    assert len(checked) >= 50


def test_lightning_messages_name_trainer_settings_as_train_py_takes_them():
    from diffusemix_bench.errors import lightning_message

    said = lightning_message("Try at least `limit_train_batches=0.5` (16-bit precision, devices=2)")
    assert said == "Try at least `trainer.limit_train_batches=0.5` (16-bit precision, trainer.devices=2)"


def _help_with_site(tmp_path, script: str, site: str) -> subprocess.CompletedProcess:
    """``<script> --help`` run with ``site`` as its sitecustomize (Python runs it first)."""
    (tmp_path / "sitecustomize.py").write_text(site)
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [sys.executable, script, "--help"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("script", ["train.py", "generate.py", "evaluate.py", "figure4.py", "report.py"])
def test_ctrl_c_while_an_entry_point_starts_is_one_line(tmp_path, script):
    """Ctrl-C during the seconds of imports (here raised where the entry point imports its
    package's command-line module, as a key press there would) ends with one line, not a
    traceback; the process ends as one interrupted does (status 130 in a shell), so a shell loop
    around it stops too."""
    result = _help_with_site(
        tmp_path,
        script,
        "import sys\n"
        "class Interrupt:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'diffusemix_bench.preflight':\n"
        "            raise KeyboardInterrupt\n"
        "sys.meta_path.insert(0, Interrupt())\n",
    )
    assert result.returncode == -signal.SIGINT
    assert (
        result.stderr.strip()
        == "interrupted (Ctrl-C); what had finished is kept: run the command again to go on"
    )


@pytest.mark.parametrize("script", ["train.py", "generate.py"])
def test_ctrl_c_in_the_teardown_after_the_work_leaves_a_finished_command_finished(tmp_path, script):
    """Ctrl-C in the second or two Python takes to tear PyTorch and its kin down after the last
    line (here sent by an object deleted in that teardown, as a key press there would be) is
    ignored: the command that finished ends with status 0, not killed silently (status 130)."""
    result = _help_with_site(
        tmp_path,
        script,
        "import os, signal, time\n"
        "class Teardown:\n"
        "    def __del__(self):\n"
        "        os.kill(os.getpid(), signal.SIGINT)\n"
        "        time.sleep(0.2)\n"
        "        os.write(2, b'teardown went on')\n"
        "kept = Teardown()\n",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stderr.endswith("teardown went on") and result.stdout.startswith("usage: python ")


def test_help_read_in_part_ends_quietly(tmp_path):
    """``train.py --help | head``: the reader closes the pipe, and the entry point stops without
    Python's BrokenPipeError report."""
    proc = subprocess.Popen(
        [sys.executable, "train.py", "--help"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    proc.stdout.close()  # the reader is gone before anything is written
    _, err = proc.communicate(timeout=120)
    assert err.decode() == "" and proc.returncode != 0


def test_a_folder_that_cannot_be_written_is_named_before_the_work(tmp_path, monkeypatch):
    """folder_problem: a file in a folder's place, a read-only disk, no permission (the entry points
    check their output folders with it before any work); and an OSError of that kind met later is
    one message naming the file and the settings that move it, not a traceback."""
    import errno
    import os

    from diffusemix_bench.errors import user_errors_reported
    from diffusemix_bench.files import folder_problem

    (tmp_path / "afile").write_text("x")
    assert folder_problem(tmp_path / "afile" / "run") == (
        f"{tmp_path / 'afile'} is a file, where a folder above {tmp_path / 'afile' / 'run'} is expected"
    )
    assert folder_problem(tmp_path / "new" / "deeper") is None and folder_problem(tmp_path) is None
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    monkeypatch.setattr(os, "statvfs", lambda path: type("S", (), {"f_flag": os.ST_RDONLY})())
    assert folder_problem(tmp_path / "run") == f"{tmp_path} is on a read-only disk"
    monkeypatch.setattr(os, "statvfs", lambda path: type("S", (), {"f_flag": 0})())
    assert folder_problem(tmp_path / "run") == f"this user may not write in {tmp_path}"
    with pytest.raises(SystemExit) as stopped, user_errors_reported():
        raise OSError(errno.EROFS, "Read-only file system", str(tmp_path / "metrics.json"))
    assert str(stopped.value).startswith(
        f"error: cannot use {tmp_path / 'metrics.json'} (Read-only file system): point the setting that names "
    )


def test_debug_fast_over_a_gpu_trainer_is_said(capsys):
    """trainer=gpu debug=fast: the preset's trainer.accelerator=cpu wins (it comes after the trainer
    group), so the smoke run trained on the CPU unsaid; a warning now says so and how to keep the GPU."""
    from diffusemix_bench.preflight import warn_debug_over_trainer

    warn_debug_over_trainer(["trainer=gpu", "debug=fast"])
    said = capsys.readouterr().err
    assert "debug=fast trains on the CPU" in said and "add trainer.accelerator=gpu" in said
    for quiet in (["debug=fast"], ["trainer=gpu"], ["trainer=gpu", "debug=fast", "trainer.accelerator=gpu"]):
        warn_debug_over_trainer(quiet)
        assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("given", "said"),
    [
        (
            "trainer.max_epochs=two",
            "trainer.max_epochs=two: trainer.max_epochs takes a whole number (such as 1 or 300), not 'two'",
        ),
        ("optim.lr=fast", "optim.lr=fast: optim.lr takes a number (such as 0.1 or 5e-4), not 'fast'"),
        (  # a setting whose value is a name, given a key of its own (Hydra: "Cannot convert 'dict'")
            "protocol.lr=0.1",
            "protocol.lr=0.1: protocol takes a name (conf/protocol/: custom, fgvc_scratch, finetune_resnet50, "
            "imagenet_resnet50, scarcity_resnet18, scratch_preact), not settings of its own; the settings a "
            "protocol sets are optim.*, sched.*, trainer.* (and some loss.*, model.*), given as they are "
            "(optim.lr=0.1, say)",
        ),
        (
            "budget.x=1",
            "budget.x=1: budget takes a name (epochs, vanilla_steps), not settings of its own; give budget=<name>",
        ),
        (
            "dataset.drop_last=maybe",
            "dataset.drop_last=maybe: dataset.drop_last takes true or false, not 'maybe'",
        ),
        (  # torchattacks' way of writing a budget: the unit is said
            "eval.eps=8/255",
            "eval.eps=8/255: eval.eps takes a number (such as 8 or 2.5) in 1/255 units of the pixel range: 8 for 8/255, "
            "not '8/255'",
        ),
    ],
)
def test_a_value_of_the_wrong_type_is_said_in_the_settings_words(given, said):
    """Hydra's "Error merging override ...: Value 'two' of type 'str' could not be converted to
    Integer" named the setting but not what to give: one line saying what the setting takes."""
    from diffusemix_bench.errors import ConfigError
    from diffusemix_bench.preflight import preflight
    from tests.conftest import CONF_DIR

    with pytest.raises(ConfigError) as refused:
        preflight([given], str(CONF_DIR))
    assert str(refused.value) == said


def test_a_weights_file_not_there_is_refused_before_any_job_starts(tmp_path):
    """model.weights naming a file that is not there failed each job of a sweep in turn (the error
    printed per job and once more at the end): refused at start-up, single run or sweep; a resume,
    which reads the checkpoint's weights, is not (the file may be gone since)."""
    from diffusemix_bench.config import check_values
    from diffusemix_bench.errors import ConfigError
    from tests.conftest import compose_config, run_entry

    gone = tmp_path / "gone.pt"
    result = run_entry("train.py", ["--multirun", "seed=0,1", f"model.weights={gone}"], tmp_path)
    assert result.returncode == 1 and "so no job was started" in result.stderr
    assert f"model.weights={gone}: no such file here" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "outputs").exists()
    check_values(compose_config([f"model.weights={gone}", "ckpt_path=last"]))  # a resume
    with pytest.raises(ConfigError, match="no such file here"):
        check_values(compose_config([f"model.weights={gone}"]))


def test_a_weights_file_not_there_is_refused_with_ckpt_path_auto_where_nothing_resumes(tmp_path, monkeypatch):
    """``ckpt_path=auto`` (the SLURM advice) where no checkpoint is there yet starts a new run from
    ``model.weights``: a file not there is refused before anything starts, single run or sweep;
    once a job of the sweep has a checkpoint, each job is left to check as it starts."""
    from diffusemix_bench.preflight import check_auto_resume_weights
    from tests.conftest import run_entry
    from tests.fixtures.datasets import write_fixture_dataset

    gone = tmp_path / "gone.pt"
    sweep = tmp_path / "sweep"
    args = ["--multirun", "seed=0,1", f"model.weights={gone}", "ckpt_path=auto", f"hydra.sweep.dir={sweep}"]
    result = run_entry("train.py", args, tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"model.weights={gone}: no such file here" in result.stderr
    assert "no job of this sweep has a checkpoint to resume from), so no job was started" in result.stderr
    assert not sweep.exists()
    run = tmp_path / "run"
    data = write_fixture_dataset("flowers102", tmp_path / "data")["data_dir"]
    single = [f"model.weights={gone}", "ckpt_path=auto", f"hydra.run.dir={run}", "dataset=flowers102"]
    result = run_entry("train.py", [*single, f"paths.data_dir={data}"], tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"model.weights={gone}: no such file here" in result.stderr and not run.exists()
    # A file of junk there, or weights of another model: refused as the run starts, no folder left
    # (it had held failure.json, the settings and the class list of a run that never trained).
    junk = tmp_path / "junk.pt"
    junk.write_bytes(bytes(range(256)) * 4)
    single = [f"model.weights={junk}", f"hydra.run.dir={run}", "dataset=flowers102", f"paths.data_dir={data}"]
    result = run_entry("train.py", single, tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"{junk} is not a readable torch file" in result.stderr and not run.exists()
    # Sent to a cluster (SLURM): the file may be on its nodes alone; each job checks as it starts.
    from diffusemix_bench import preflight

    monkeypatch.setattr(preflight, "check_slurm", lambda *a, **k: None)
    monkeypatch.setattr(sys, "argv", ["train.py", *args, "hydra/launcher=slurm"])
    with pytest.raises(SystemExit) as met:  # what it meets next: the sweep's data is not here
        preflight.before_hydra(str(ROOT / "conf"), "config")
    assert "not all there" in str(met.value) and "model.weights" not in str(met.value)
    # A job with a checkpoint resumes from it: the sweep is not refused as a whole.
    (sweep / "0_seed=0" / "checkpoints").mkdir(parents=True)
    (sweep / "0_seed=0" / "checkpoints" / "last.ckpt").write_bytes(b"")
    jobs = [
        [f"model.weights={gone}", "ckpt_path=auto", f"hydra.sweep.dir={sweep}", f"seed={s}"] for s in (0, 1)
    ]
    check_auto_resume_weights(jobs, str(ROOT / "conf"), "config")


def test_a_composition_asked_for_again_is_a_copy_and_an_edited_config_is_composed_afresh(tmp_path):
    """The start-up checks and report.py compose the same command lines many times: each is composed
    once per process, unless a file of the config folder changed since."""
    import shutil

    from diffusemix_bench.compose import compose_raw

    conf = tmp_path / "conf"
    shutil.copytree(ROOT / "conf", conf)
    first = compose_raw(str(conf), "config", ["aug=mixup"])
    assert first.aug.alpha is None
    first.aug.alpha = 123.0  # a caller changing its copy changes nobody else's
    again = compose_raw(str(conf), "config", ["aug=mixup"])
    assert again.aug.alpha is None
    again.aug.alpha = 456.0
    assert compose_raw(str(conf), "config", ["aug=mixup"]).aug.alpha is None
    mixup = conf / "aug" / "mixup.yaml"
    mixup.write_text(mixup.read_text().replace("alpha: null", "alpha: 0.4"))
    assert compose_raw(str(conf), "config", ["aug=mixup"]).aug.alpha == 0.4
    (conf / "aug" / "new.yaml").write_text(mixup.read_text().replace("alpha: 0.4", "alpha: 0.7"))
    assert compose_raw(str(conf), "config", ["aug=new"]).aug.alpha == 0.7


def test_the_printed_config_keeps_long_values_whole(capsys):
    """print_config=true in a log (no terminal: rich's 80 columns): a long run folder's path is
    printed whole, not cut at the width, where it read as another path."""
    from diffusemix_bench.cli import print_config_tree
    from tests.conftest import compose_config

    cfg = compose_config(["dataset=flowers102"])
    long = "/tmp/a_sweep_folder/0_aug=none,dataset=flowers102,seed=0/" + "x" * 120
    cfg.paths.output_dir = long
    print_config_tree(cfg)
    out = capsys.readouterr().out
    assert f"output_dir: {long}\n" in out


def test_hydra_job_chdir_is_refused_before_any_folder_with_the_reason(tmp_path):
    """``hydra.job.chdir=true`` would run the job in its run folder, where the relative data folder
    (checked at start-up where the command was launched) is not: refused by train.py (single run and
    sweep, before a job starts) and generate.py, one line, no folder made."""
    from tests.conftest import run_entry
    from tests.fixtures.datasets import write_fixture_dataset

    write_fixture_dataset("flowers102", tmp_path / "data")  # (./data: found where it is launched)
    for script, args in (
        ("train.py", ["dataset=flowers102", "paths.log_dir=out"]),
        ("train.py", ["--multirun", "dataset=flowers102", "seed=0,1", "paths.log_dir=out"]),
        ("generate.py", ["dataset=flowers102", "generator=tiny", "paths.log_dir=out"]),
    ):
        result = run_entry(script, [*args, "hydra.job.chdir=true"], tmp_path)
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        said = [line for line in result.stderr.splitlines() if "hydra.job.chdir" in line]
        assert said == [
            f"error: hydra.job.chdir=true: {script} reads relative paths (paths.data_dir, dataset.root, the caches) "
            "from the folder it is launched from and writes its files into the run folder by their paths, so it "
            "runs where it is launched; leave hydra.job.chdir out (or give hydra.job.chdir=false)"
        ], result.stderr
        assert not (tmp_path / "out").exists(), script


@pytest.mark.parametrize("script", ["figure4.py", "generate.py"])
def test_figure4_and_generate_into_a_training_runs_folder_get_a_folder_of_their_own(tmp_path, script):
    """hydra.run.dir naming a training run's folder: figure4.py and generate.py would write their
    files there; refused with the advice that fits them (it was a resume's, to train the run
    longer), the run's files left as they were."""
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.ckpt").write_bytes(b"")
    (run / "metrics.json").write_text("{}")
    result = run_entry(
        script, ["dataset=imagefolder", f"dataset.root={tmp_path}", f"hydra.run.dir={run}"], tmp_path
    )
    name = script.removesuffix(".py")
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert (
        f"error: hydra.run.dir={run} holds a training run (metrics.json or checkpoints/), and {script} writes its "
        f"own files into its run folder"
        in result.stderr
        and "give it a folder of its own (hydra.run.dir=<new folder>)" in result.stderr
        and "train" not in result.stderr.split("holds a training run")[1]
    ), result.stderr[-2000:]
    assert sorted(p.name for p in run.iterdir()) == ["checkpoints", "metrics.json"]
    assert not (run / f"{name}.log").exists()
