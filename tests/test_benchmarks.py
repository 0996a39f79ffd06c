"""The GPU-hour estimate of the paper tables (benchmarks/table_costs.py): what each run costs follows
from its composed config and the committed GPU measurements."""

from __future__ import annotations

import pytest

from benchmarks import table_costs
from tests.conftest import compose_config


@pytest.fixture(scope="module")
def measured():
    return table_costs.throughputs(), table_costs.mixing_seconds()


def hours(overrides, measured):
    return table_costs.run_cost(compose_config(overrides), *measured)


def test_a_diffusemix_run_costs_three_views_of_a_vanilla_run(measured):
    none, none_bound, shape = hours(["experiment=table6", "dataset=flowers102", "aug=none"], measured)
    dm, dm_bound, _ = hours(["experiment=table6", "dataset=flowers102", "aug=diffusemix"], measured)
    assert shape == "resnet18 224px b16" and not none_bound and not dm_bound
    assert dm == pytest.approx(3 * none)
    # 300 epochs of Flowers-102's 1,020 images at the measured framework rate for that shape.
    rate = measured[0][("resnet18", 224, 16)]
    assert none == pytest.approx(300 * 1020 / rate / 3600)


def test_static_append_costs_follow_the_budget(measured):
    base = ["experiment=table6", "dataset=flowers102", "aug=diffusemix", "aug.mode=static_append", "loss=ce"]
    epochs, _, _ = hours(base + ["budget=epochs"], measured)
    equal, _, _ = hours(base + ["budget=vanilla_steps"], measured)
    none, _, _ = hours(["experiment=table6", "dataset=flowers102", "aug=none"], measured)
    assert equal == pytest.approx(none)
    assert epochs == pytest.approx(10 * none)  # the originals and one composed copy per prompt (9)


def test_mixing_time_is_added_where_measured_and_a_bound_elsewhere(measured):
    none, _, _ = hours(["experiment=table2", "dataset=cifar100", "aug=none"], measured)
    comix, bound, _ = hours(["experiment=table2", "dataset=cifar100", "aug=comixup"], measured)
    assert not bound and comix > none
    _, tiny_bound, _ = hours(["experiment=table2", "dataset=tinyimagenet", "aug=comixup"], measured)
    assert tiny_bound  # Co-Mixup's extra cost was not measured at 64 px


def test_throughput_is_the_train_py_arm_where_measured(monkeypatch):
    rows = [
        {
            "model": "resnet18",
            "size": 224,
            "batch": 16,
            "loop": "bare PyTorch (baseline)",
            "images_per_s": 300.0,
        },
        {
            "model": "resnet18",
            "size": 224,
            "batch": 16,
            "loop": "diffusemix_bench ClassifierModule",
            "images_per_s": 250.0,
        },
        {
            "model": "resnet18",
            "size": 224,
            "batch": 16,
            "loop": "ClassifierModule as train.py runs it (callbacks, logger, progress bar)",
            "images_per_s": 240.0,
        },
        {
            "model": "resnet50",
            "size": 224,
            "batch": 16,
            "loop": "diffusemix_bench ClassifierModule",
            "images_per_s": 90.0,
        },
    ]
    monkeypatch.setattr(table_costs, "load", lambda name: {"rows": rows})
    assert table_costs.throughputs() == {("resnet18", 224, 16): 240.0, ("resnet50", 224, 16): 90.0}


def test_derived_results_are_rewritten_only_when_a_number_changes(tmp_path, monkeypatch):
    """table_costs' files are derived from GPU result files: run again on the same inputs, they
    keep their date and machine (a committed file is not rewritten for nothing); a changed number
    rewrites them."""
    import json

    from benchmarks import common

    monkeypatch.setattr(common, "RESULTS", tmp_path)
    rows = [{"table": "2", "hours": "55"}]
    json_path, md_path = common.write_results("costs", {"settings": {"gpu": "H200"}}, rows, derived=True)
    first = json.loads(json_path.read_text())
    # Said to be derived, where, and with the code's commit; not as the sources' machine.
    assert first["derived"] is True and "commit" in first["machine"]
    assert md_path.read_text().splitlines()[4].startswith("Derived (not measured) on: ")
    first["date"], first["machine"] = "2026-01-01 00:00:00", {"host": "elsewhere"}
    json_path.write_text(json.dumps(first))
    md_before = md_path.read_text()
    common.write_results("costs", {"settings": {"gpu": "H200"}}, rows, derived=True)
    assert json.loads(json_path.read_text()) == first and md_path.read_text() == md_before
    common.write_results(
        "costs", {"settings": {"gpu": "H200"}}, [{"table": "2", "hours": "56"}], derived=True
    )
    again = json.loads(json_path.read_text())
    assert again["rows"] == [{"table": "2", "hours": "56"}] and again["date"] != first["date"]
    # A measured result (not derived) is always written: its date and machine are the measurement's.
    common.write_results("costs", {"settings": {"gpu": "H200"}}, [{"table": "2", "hours": "56"}])
    assert json.loads(json_path.read_text())["machine"] != first["machine"]
