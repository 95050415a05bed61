"""The exact pins live in requirements.lock; pyproject.toml keeps ranges that the lock satisfies,
environment.yml installs the lock, and every third-party module the code imports is declared."""

import re
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _lock() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"requirements.lock: {line!r} is not an exact pin (name==version)"
            pins[canonicalize_name(name)] = version
    return pins


def _declared() -> list[Requirement]:
    p = _project()
    reqs = list(p["dependencies"])
    for extra in p["optional-dependencies"].values():
        reqs += extra
    return [Requirement(r) for r in reqs]


def test_lock_pins_torch_2_13_0_cpu():
    assert _lock()["torch"] == "2.13.0"


@pytest.mark.parametrize("req", _declared(), ids=str)
def test_lock_satisfies_every_declared_range(req):
    pins = _lock()
    name = canonicalize_name(req.name)
    assert name in pins, f"{req} is declared in pyproject.toml but missing from requirements.lock (make lock)"
    assert req.specifier.contains(pins[name], prereleases=True), f"lock pins {name}=={pins[name]}, outside {req}"


def test_environment_yml_installs_the_lock():
    text = (ROOT / "environment.yml").read_text()
    assert re.search(r"^\s+- -r requirements\.lock$", text, re.M)
    python = re.search(r"^\s+- python=(\d+\.\d+)$", text, re.M).group(1)
    assert Requirement(f"python{_project()['requires-python']}").specifier.contains(python + ".0")


IMPORT_NAMES = {"sklearn": "scikit-learn", "umap": "umap-learn", "IPython": "ipython", "yaml": "pyyaml"}


def test_every_imported_third_party_module_is_declared():
    declared = {canonicalize_name(r.name) for r in _declared()}
    found = set()
    for folder in ("hdcid", "tests", "benchmarks", "scripts", "notebooks"):
        for path in (ROOT / folder).rglob("*.py"):
            for m in re.finditer(r"^\s*(?:from|import) ([A-Za-z_][A-Za-z0-9_]*)", path.read_text(), re.M):
                found.add(m.group(1))
    local = (
        {"hdcid", "conftest"}
        | {p.stem for p in (ROOT / "benchmarks").glob("*.py")}
        | {p.stem for p in (ROOT / "scripts").glob("*.py")}
    )
    third = {m for m in found if m not in sys.stdlib_module_names and m not in local and m != "__future__"}
    missing = {m for m in third if canonicalize_name(IMPORT_NAMES.get(m, m)) not in declared}
    assert not missing, f"imported but not declared in pyproject.toml: {sorted(missing)}"


# What the GPU machine's Python already holds, of what the listed wheels need (the device tool's list of
# the image's packages, 2026-11-17).
GPU_IMAGE = {
    canonicalize_name(n)
    for n in """aiohttp attrs click joblib llvmlite numba numpy packaging psutil pygments python-dateutil
    pyyaml requests scikit-learn scipy tqdm typing-extensions""".split()
}


def test_the_gpu_wheels_are_pinned_in_the_lock_with_what_they_need():
    """benchmarks/gpu_wheels.sh downloads each listed name at its lock pin; a name the lock lacks would
    stop it, and the GPU machine cannot fetch a dependency that the list forgot."""
    from importlib import metadata

    listed = [
        canonicalize_name(line)
        for line in (ROOT / "benchmarks" / "gpu_wheels.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    pins = _lock()
    assert not [n for n in listed if n not in pins], "gpu_wheels.txt names packages requirements.lock does not pin"
    for must in ("papermill", "ipykernel", "ipywidgets", "umap-learn"):  # the runner, widgets and UMAP
        assert must in listed
    env = {"extra": "", "python_version": "3.12", "sys_platform": "linux", "platform_system": "Linux"}
    for name in listed:  # each listed package's own needs: listed too, or installed beside torch there
        for r in metadata.distribution(name).requires or []:
            req = Requirement(r)
            if req.marker is None or req.marker.evaluate(env):
                dep = canonicalize_name(req.name)
                assert dep in listed or dep in GPU_IMAGE, f"{name} needs {dep}: add it to benchmarks/gpu_wheels.txt"
