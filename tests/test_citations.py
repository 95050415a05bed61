"""No docstring, doc or notebook cites a file that is not in the repository.

The original specification lived outside the repository (`pretrain.md`, `downstream.md`); the method
is now described in `docs/method.md`, and that (or another file that exists) is what the code cites.
Checked in hdcid/, docs/, notebooks/*.py, README.md and benchmarks/:

* every `something.md` must exist (relative to the citing file, to the repository root, or as a file
  of that name somewhere in the repository);
* every repository path `hdcid/...`, `docs/...`, `notebooks/...`, `tests/...`, `benchmarks/...`
  ending in .py / .md / .json / .ipynb must exist (names with placeholders such as `NN_name.py` or `*`
  are patterns, not citations);
* no "spec 2.3" / "spec pretrain.md" / "Spec:" style reference to the external specification.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ROOTS = ["hdcid", "docs", "notebooks", "benchmarks", "README.md"]
SUFFIXES = {".py", ".md", ".txt", ".toml", ".yml", ".yaml"}

MD_TOKEN = re.compile(r"(?<![\w/.-])([\w./-]*[\w-]\.md)\b")
REPO_PATH = re.compile(r"(?<![\w/.-])((?:hdcid|docs|notebooks|tests|benchmarks)/[\w./-]+\.(?:py|md|json|ipynb))\b")
SPEC_REF = re.compile(r"\b[Ss]pec(?:ification)?(?::\s*|\s+)(?:sections?\s+|s(?=\d))?(?:\d|pretrain|downstream|README)")
PLACEHOLDER = re.compile(r"NN|\*|<|\{|\.\.\.|XX")
GENERATED = {"results.md"}  # written at run time by hdcid.downstream.write_results into <outputs>/results/


def _files() -> list[Path]:
    out = []
    for root in ROOTS:
        p = REPO / root
        if p.is_file():
            out.append(p)
        elif p.is_dir():
            out += [
                f for f in p.rglob("*") if f.is_file() and f.suffix in SUFFIXES and ".ipynb_checkpoints" not in f.parts
            ]
    return sorted(out)


@functools.lru_cache(maxsize=1)
def _names() -> frozenset[str]:
    """Names of the repository's own files (generated corpora, caches and outputs are not walked)."""
    skip = {".git", ".venv", "outputs", "data", "checkpoints", "node_modules", "__pycache__"}
    names = set()
    for _root, dirs, files in os.walk(REPO):
        dirs[:] = [d for d in dirs if d not in skip and not d.startswith(".")]
        names.update(files)
    return frozenset(names)


def _exists(token: str, citing: Path, names: set[str]) -> bool:
    token = token.strip("./") if token.startswith("./") else token
    for base in (citing.parent, REPO):
        if (base / token).exists():
            return True
    return "/" not in token and token in names


def test_the_checker_sees_the_files():
    files = _files()
    assert REPO / "README.md" in files and REPO / "hdcid" / "model" / "quantizer.py" in files
    assert SPEC_REF.search("see spec 2.3") and SPEC_REF.search("Spec: pretrain.md sections")
    assert SPEC_REF.search("(spec downstream.md s3.1)") and not SPEC_REF.search("spec = TASKS[task]")
    assert not SPEC_REF.search("spec.epochs") and not SPEC_REF.search("spec_dim")
    assert not SPEC_REF.search("def run_one(spec: dict)") and SPEC_REF.search("(spec 7 item 2)")


@pytest.mark.parametrize("path", _files(), ids=lambda p: str(p.relative_to(REPO)))
def test_no_citation_of_a_missing_file(path):
    names = _names()
    text = path.read_text(encoding="utf-8", errors="replace")
    bad = []
    for n, line in enumerate(text.splitlines(), 1):
        for _m in SPEC_REF.finditer(line):
            bad.append(f"line {n}: cites the external spec: {line.strip()[:100]!r} (cite docs/method.md)")
        for token in MD_TOKEN.findall(line) + REPO_PATH.findall(line):
            if PLACEHOLDER.search(token) or token.startswith(("http", "//")) or Path(token).name in GENERATED:
                continue
            if not _exists(token, path, names):
                bad.append(f"line {n}: {token!r} is not in the repository")
    assert not bad, f"{path.relative_to(REPO)}:\n  " + "\n  ".join(bad)
