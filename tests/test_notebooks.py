"""The notebook collection: committed without outputs, in sync with its jupytext source, and every
notebook executes in quick mode (papermill) in a fresh cache, in order, within a time budget.

The execution tests are marked `notebook` (and `slow`): `pytest -m notebook tests/test_notebooks.py`.
Executed copies and measured runtimes go to `<repo>/outputs/test-notebooks/`; `make runtimes` merges
those seconds into docs/runtimes.json, from which every notebook's runtime line is generated.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
NB_DIR = REPO / "notebooks"
ORDER = [
    "00_tour",
    "01_pretraining",
    "02_codebook_usage",
    "03_toc",
    "04_hierarchical_alignment",
    "05_ave",
    "06_avvp",
    "07_ave_to_avvp",
    "08_ucf_vggsound",
    "09_results",
]
BUDGET_S = 180  # per notebook (target: 90 s on a 2-core CPU; CI machines are noisy)
OUT = REPO / "outputs" / "test-notebooks"


def _read(name: str):
    return nbformat.read(NB_DIR / f"{name}.ipynb", as_version=4)


def test_collection_is_complete_and_ordered():
    found = sorted(p.stem for p in NB_DIR.glob("[0-9][0-9]_*.ipynb"))
    assert found == ORDER


@pytest.mark.parametrize("name", ORDER)
def test_committed_notebook_has_no_outputs_and_follows_the_skeleton(name):
    nb = _read(name)
    code = [c for c in nb.cells if c.cell_type == "code"]
    dirty = [i for i, c in enumerate(code) if c.outputs or c.execution_count is not None]
    assert not dirty, f"{name}: code cells {dirty} carry outputs or execution counts; strip them"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    assert "**Runtime**" in nb.cells[0].source
    params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1, f"{name}: expected exactly one cell tagged 'parameters'"
    for line in params[0].source.splitlines():  # literals only (papermill overrides them)
        if line.strip() and not line.lstrip().startswith("#"):
            value = line.split("=", 1)[1].split("#")[0].strip()
            assert re.fullmatch(r"None|True|False|-?\d+(\.\d+)?|\"[^\"]*\"|\[[\d, ]*\]", value), f"{name}: {line!r}"
    src = "\n".join(c.source for c in code)
    assert "S = start(" in src and "quick=QUICK" in src  # hdcid.notebook.start: quick mode, device, corpus
    assert "plots.save_figure(" in src
    assert "plt.show()" not in src
    headings = [c.source.splitlines()[0] for c in nb.cells if c.cell_type == "markdown"]
    assert "## Summary" in headings and "## Exercises" in headings


def _cells(nb) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(c.cell_type, c.source, tuple(c.metadata.get("tags", []))) for c in nb.cells]


@pytest.mark.parametrize("name", ORDER)
def test_notebook_is_in_sync_with_its_jupytext_source(name):
    """`notebooks/NN_name.py` (jupytext percent format) is the source; the `.ipynb` is its pair.
    After editing the `.py`, run `make notebooks-sync` (jupytext --sync)."""
    import jupytext

    source = NB_DIR / f"{name}.py"
    assert source.exists(), f"{source} is missing: every notebook has a jupytext percent source"
    assert _cells(jupytext.read(source)) == _cells(_read(name)), (
        f"{name}.ipynb is out of sync with {name}.py; run `make notebooks-sync`"
    )


def test_task_notebooks_are_rendered_from_the_shared_template():
    """05-08 share one structure kept in notebooks/templates/ (`render_tasks.py`); the committed
    sources must be exactly what it renders (run `make notebooks-sync` after editing a template)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("render_tasks", NB_DIR / "templates" / "render_tasks.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert sorted(mod.TASKS) == [n for n in ORDER if n[:2] in ("05", "06", "07", "08")]
    for name in mod.TASKS:
        assert (NB_DIR / f"{name}.py").read_text() == mod.render(name), (
            f"{name}.py differs from notebooks/templates/ (render_tasks.py); edit the template and run "
            f"`make notebooks-sync`"
        )


def test_runtime_lines_come_from_the_measured_file():
    """Every notebook's runtime line is generated from docs/runtimes.json (hdcid.runtimes), which holds
    a measured quick and full time for every notebook."""
    from hdcid import runtimes

    data = runtimes.load()
    assert sorted(data["notebooks"]) == ORDER
    for name, entry in data["notebooks"].items():
        for mode in runtimes.MODES:
            assert entry[mode]["seconds"] > 0 and entry[mode]["command"], (name, mode)
    assert runtimes.rewrite_lines(NB_DIR, data, check=True) == [], (
        "runtime lines disagree with docs/runtimes.json; run `python -m hdcid.runtimes` (make notebooks-sync)"
    )
    for name in ORDER:
        assert "# " + runtimes.runtime_line(name, data) in (NB_DIR / f"{name}.py").read_text()


# ------------------------------------------------------------------------------- execution
@pytest.fixture(scope="module")
def quick_env(tmp_path_factory):
    """Fresh cache / output / demo folders shared by the notebooks of this module (they run in
    order and share the cache); the demo corpus is built once. The environment is restored after."""
    root = tmp_path_factory.mktemp("nb")
    env = {
        "HDCID_QUICK": "1",
        "HDCID_CACHE": str(root / "cache"),
        "HDCID_OUTPUT": str(root / "out"),
        "HDCID_DEMO_ROOT": str(root / "demo"),
    }
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    from hdcid.demo.build import build_demo

    build_demo(root / "demo", seed=0, scale=0.25)
    yield root
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.mark.notebook
@pytest.mark.slow
@pytest.mark.parametrize("name", ORDER)
def test_notebook_executes_in_quick_mode(name, quick_env):
    import papermill as pm

    OUT.mkdir(parents=True, exist_ok=True)
    out = OUT / f"{name}.ipynb"
    start = time.perf_counter()
    pm.execute_notebook(
        str(NB_DIR / f"{name}.ipynb"),
        str(out),
        cwd=str(NB_DIR),
        kernel_name="python3",
        progress_bar=False,
        execution_timeout=BUDGET_S,
    )
    seconds = time.perf_counter() - start
    times = OUT / "runtimes.json"
    record = json.loads(times.read_text()) if times.exists() else {}
    record[name] = round(seconds, 1)
    times.write_text(json.dumps(record, indent=1, sort_keys=True))
    assert seconds < BUDGET_S, f"{name} took {seconds:.0f} s in quick mode (budget {BUDGET_S} s)"
    nb = nbformat.read(out, as_version=4)
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "quick mode: True" in text and "device:" in text
    assert f"{name} finished in" in text
    figures = sorted(p.name for p in (quick_env / "out" / "figures").glob(f"{name[:2]}-*.png"))
    if name != "00_tour" or figures:
        assert figures, f"{name} saved no figure named {name[:2]}-*.png"
    pngs = sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert pngs >= 1, f"{name}: no figure was displayed"
    if name in ("01_pretraining", "02_codebook_usage"):
        _check_notebook_claims(name, nb, text)
    if name == "03_toc":
        assert "Invalid setting: choose_channel" in text and "probe accuracy" in text
    if name in ("05_ave", "06_avvp", "07_ave_to_avvp", "08_ucf_vggsound"):
        assert (quick_env / "out" / "results" / f"{name}.csv").exists()
    if name == "09_results":
        assert (quick_env / "out" / "results" / "results.md").exists()
        shutil.copy(quick_env / "out" / "results" / "results.md", OUT / "results.md")


def _claims_lines(text: str) -> list:
    return [json.loads(line[len("CLAIMS ") :]) for line in text.splitlines() if line.startswith("CLAIMS ")]


def _markdown_outputs(nb) -> str:
    return "".join(
        o.get("data", {}).get("text/markdown", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs
    )


def _check_notebook_claims(name: str, nb, text: str) -> None:
    """The summary a notebook displays must agree with the numbers it printed (issue 8): 01 prints
    `analysis.agreement_claims` (words + numbers) and shows their sentences; 02 prints the held-out
    audio-video agreement per model/level with the verdict it states."""
    from hdcid import analysis

    claims = _claims_lines(text)
    assert claims, f"{name}: no CLAIMS line printed"
    shown = _markdown_outputs(nb)
    if name == "01_pretraining":
        (c01,) = claims
        assert len(c01) == 3  # DCID L1, H-DCID L1, L2
        assert analysis.check_claims(c01) == []
        for c in c01:
            assert c["sentence"] in shown, f"{name}: the summary does not show {c['sentence']!r}"
    else:
        (c02,) = claims
        for key, c in c02.items():
            assert c["sharing"] == analysis.sharing_verdict(c["agreement"]), key
            assert f"{key}: " in shown and f"{c['agreement']:.0%} of the foreground seconds ({c['sharing']})" in shown
