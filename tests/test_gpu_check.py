"""`mtbench bench gpu` (mtbench/gpucheck): the whole command at toy sizes on Warp's CPU device and torch's CPU, so
the script is known to work before a GPU ever sees it; its pieces (report, host-sync detector, parts) on their own;
and the dependency pruning of the offline install (tools/wheelhouse.py).

The dry run is split over two files (this one and test_gpu_check_learning.py) that pytest-xdist runs side by side:
each half took 30-50 s on 2 shared cores with a warm Warp kernel cache (~/.cache/warp)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from gpu_dry_run import dry_run

from mtbench.cli import main as cli_main
from mtbench.gpucheck.report import Report
from mtbench.gpucheck.syncs import SyncRecorder
from mtbench.parts import join_parts, split_file

ROOT = Path(__file__).resolve().parent.parent


def test_dry_run_correctness_and_speed(tmp_path: Path):
    """The first half of `mtbench bench gpu dry_run=True` (the second: test_gpu_check_learning.py; two files, so
    pytest-xdist runs the halves side by side)."""
    steps = dry_run(tmp_path, ["machine", "kernels", "tests", "graphs", "speed", "e2e"])
    assert steps["kernels"].data["first_s"] > 0
    assert steps["tests"].data["tests"]["passed"] >= 1  # the pytest subprocess ran and its outcomes were read back
    graphs = steps["graphs"].data
    assert graphs["metaworld"]["bitwise"] and graphs["parkour"]["run_to_run_bitwise"]
    speed = steps["speed"].data
    assert set(speed) == {"mt10", "mt50", "parkour"} and all(v[1]["graphs"] > 0 for v in speed.values())
    assert steps["e2e"].data["mt10"]["train_fps"] > 0


def test_a_failing_step_is_recorded_and_the_next_still_runs(tmp_path: Path):
    report = Report(tmp_path / "r.md", "t", "p", echo=False)
    with report.step("breaks", 1.0):
        raise ValueError("boom")
    with report.step("runs", None) as s:
        s.say("fine")
    report.summary()
    text = (tmp_path / "r.md").read_text()
    assert "## 1. breaks: FAIL" in text and "ValueError: boom" in text and "## 2. runs: PASS" in text
    assert [s.title for s in report.failed] == ["breaks"]


def test_the_cpu_proxy_finds_syncs_in_mtbench_code_and_restores_torch():
    from mtbench.algos.common import task_counts

    item = torch.Tensor.item
    rec = SyncRecorder(torch.device("cpu"))
    with rec.record("update"):
        task_counts(torch.tensor([0, 1, 1]), 2)  # torch.bincount: reads the max back on CUDA
        torch.ones(2).sum().item()  # called from this test, not mtbench: not counted
    assert torch.Tensor.item is item and torch.bincount.__module__ == "torch"
    rows = rec.rows()
    assert [(r[0], r[1].split(":")[0], r[2]) for r in rows] == [("update", "mtbench/algos/common.py", "torch.bincount")]


def test_gpu_without_a_gpu_names_the_dry_run(capsys):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(SystemExit) as e:
        cli_main(["bench", "gpu"])
    assert e.value.code == 2 and "dry_run=True" in capsys.readouterr().err


@pytest.mark.parametrize("size", [1000, 1024, 5000])
def test_parts_round_trip_and_catch_damage(tmp_path: Path, size: int):
    src = tmp_path / "a.bin"
    src.write_bytes(bytes(range(256)) * 10)  # 2560 bytes: 3 parts of 1000, 3 of 1024 (the last short), 1 of 5000
    manifest = split_file(src, size, tmp_path / "parts")
    info = json.loads(manifest.read_text())
    assert sum(p["bytes"] for p in info["parts"]) == 2560 and all(p["bytes"] <= size for p in info["parts"])
    assert join_parts(manifest, tmp_path / "out").read_bytes() == src.read_bytes()
    first = tmp_path / "parts" / info["parts"][0]["name"]
    first.write_bytes(b"x" + first.read_bytes()[1:])
    with pytest.raises(ValueError, match="damaged"):
        join_parts(manifest, tmp_path / "out2")
    first.unlink()
    with pytest.raises(FileNotFoundError, match="parts missing"):
        join_parts(manifest, tmp_path / "out3")


def test_the_wheelhouse_leaves_out_torch_and_what_only_torch_needs():
    spec = importlib.util.spec_from_file_location("wheelhouse", ROOT / "tools" / "wheelhouse.py")
    wh = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(wh)
    row = lambda name, *deps: {"name": name, "version": "1", "requires_dist": list(deps)}  # noqa: E731
    resolved = [
        row("A", "b[x]>=1", "torch", 'win-only; sys_platform == "win32"'),
        row("b", "typing-extensions", 'for-x; extra == "x"', 'for-y; extra == "y"'),
        row("torch", "sympy", "typing_extensions"),
        *(row(n) for n in ("sympy", "typing-extensions", "for-x", "for-y", "win-only")),
    ]
    kept, dropped = wh.keep_without(resolved, ["a>=1"], ["torch"], wh.target_markers("3.12", "x86_64"))
    assert sorted(r["name"] for r in kept) == ["A", "b", "for-x", "typing-extensions"]
    assert dropped == ["for-y", "sympy", "torch", "win-only"]
    assert "torch" not in " ".join(wh.project_requirements([]))
    flags = wh.target_flags("3.12", "x86_64", "2.28")
    assert "cp312" in flags and "manylinux_2_28_x86_64" in flags and "manylinux_2_29_x86_64" not in flags
