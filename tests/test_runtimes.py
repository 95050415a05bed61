"""hdcid.runtimes: the measured-runtimes file and the runtime lines generated from it."""

from __future__ import annotations

import json

import pytest

from hdcid import runtimes


def _nb(tmp_path, name, line="# **Runtime** — typed by hand"):
    src = tmp_path / f"{name}.py"
    src.write_text(f"# %% [markdown]\n# # {name}\n#\n{line}\n\n# %%\nprint(1)\n")
    return src


def test_record_merge_and_line(tmp_path):
    path = tmp_path / "runtimes.json"
    runtimes.record("01_x", "quick", 32.71, path=path, command="cmd", note="including pretraining")
    runtimes.record("01_x", "full", 459.3, path=path, command="cmd")
    data = runtimes.load(path)
    assert data["notebooks"]["01_x"]["quick"]["seconds"] == 32.7
    assert data["notebooks"]["01_x"]["note"] == "including pretraining"  # kept when not given again
    line = runtimes.runtime_line("01_x", data)
    assert line == (
        "**Runtime** — quick (`HDCID_QUICK=1`): ~33 s; full: ~8 min; measured on a 2-core CPU, "
        "no GPU, including pretraining (see `docs/runtimes.json`)."
    )
    runtimes.record("01_x", "quick", 68.0, path=path, command="cmd", machine="a busy CPU")
    assert runtimes.runtime_line("01_x", runtimes.load(path)) == (
        "**Runtime** — quick (`HDCID_QUICK=1`): ~68 s (a busy CPU); full: ~8 min (a 2-core CPU, no GPU); "
        "measured, including pretraining (see `docs/runtimes.json`)."
    )
    tests_file = tmp_path / "tests.json"
    tests_file.write_text(json.dumps({"01_x": 40.04, "02_y": 7.0}))
    assert runtimes.merge(tests_file, "quick", path=path) == ["01_x", "02_y"]
    data = runtimes.load(path)
    assert data["notebooks"]["01_x"]["quick"]["seconds"] == 40.0 and "full" in data["notebooks"]["01_x"]
    with pytest.raises(KeyError, match="02_y"):  # no full measurement yet
        runtimes.runtime_line("02_y", data)


def test_format_seconds():
    assert runtimes.format_seconds(9.6) == "~10 s"
    assert runtimes.format_seconds(114.1) == "~114 s"
    assert runtimes.format_seconds(139.6) == "~2 min"


def test_rewrite_lines_rewrites_and_checks(tmp_path):
    path = tmp_path / "runtimes.json"
    for mode, s in (("quick", 10.0), ("full", 11.0)):
        runtimes.record("00_a", mode, s, path=path, command="c")
    src = _nb(tmp_path, "00_a")
    data = runtimes.load(path)
    assert runtimes.rewrite_lines(tmp_path, data, check=True) == ["00_a"]
    assert "typed by hand" in src.read_text()  # check mode writes nothing
    assert runtimes.rewrite_lines(tmp_path, data) == ["00_a"]
    assert "# " + runtimes.runtime_line("00_a", data) in src.read_text()
    assert runtimes.rewrite_lines(tmp_path, data, check=True) == []


def test_bad_input_is_named(tmp_path):
    path = tmp_path / "runtimes.json"
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="runtimes.json"):
        runtimes.load(path)
    with pytest.raises(ValueError, match="mode"):
        runtimes.record("00_a", "slow", 1.0, path=tmp_path / "r.json")
    _nb(tmp_path, "00_b", line="no runtime line here")
    with pytest.raises(ValueError, match="00_b.py"):
        runtimes.rewrite_lines(tmp_path, {"notebooks": {}})


def test_runner_record_writes_the_measured_seconds(monkeypatch, tmp_path):
    from hdcid import runner

    monkeypatch.setattr(
        runner,
        "run_notebook",
        lambda path, quick, out_dir, timeout=None: runner.NotebookRun(path.stem, 12.34, out_dir / path.name),
    )
    monkeypatch.setattr(runtimes, "runtimes_path", lambda: tmp_path / "rt.json")
    monkeypatch.setenv("HDCID_OUTPUT", str(tmp_path / "out"))
    runner.run_all(True, only=["03_toc"], record=True)
    entry = runtimes.load(tmp_path / "rt.json")["notebooks"]["03_toc"]
    assert entry["quick"]["seconds"] == 12.3 and entry["quick"]["command"] == "python -m hdcid.runner --quick"
    runner.run_all(False, only=["03_toc"], record=False)  # without --record nothing is written
    assert "full" not in runtimes.load(tmp_path / "rt.json")["notebooks"]["03_toc"]


def test_gpu_table_lists_every_outcome_and_the_docs_agree():
    gpu = {
        "machine": {"device": "GPU X", "torch": "2.x", "cuda": "13.0", "cpu_count": 16},
        "mode": "full",
        "cpu_full": {"seconds": {"00_a": 10.0, "01_b": 20.0}, "source": "a CPU"},
        "runs": {
            "tiny": {
                "command": "cmd tiny",
                "scale": 1.0,
                "build_seconds": 5.0,
                "total_seconds": 12.5,
                "notebooks": {"00_a": {"seconds": 8.25}, "01_b": {"seconds": 4.25, "error": "boom"}},
            },
            "paper": {
                "command": "cmd paper",
                "pretrain_scale": 10.0,
                "build_seconds": 20.0,
                "notebooks": {"00_a": {"unfinished_after": 170}, "01_b": {"skipped": "deadline"}},
            },
        },
    }
    table = runtimes.gpu_table(gpu)
    assert "| 00_a | 10.0 s | 8.2 s | stopped unfinished after 170 s |" in table
    assert "| 01_b | 20.0 s | failed after 4.2 s | deadline |" in table
    assert "| **sum** | 30.0 s | 12.5 s (+ corpus 5 s) | - |" in table
    assert "- tiny: `cmd tiny`" in table and "pretraining set 10x" in table
    # the committed docs/notebooks.md block is exactly what docs/gpu_collection.json generates
    assert runtimes.rewrite_gpu_table(check=True) is False
