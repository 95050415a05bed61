"""environment.yml (for conda users) must pin exactly what pyproject.toml installs."""
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[ ;]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pip_section(text: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "- pip:")
    out = []
    for line in lines[start + 1 :]:
        m = re.match(r"^\s+- (.+)$", line)
        if not m:
            break
        out.append(m.group(1).strip())
    return out


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(r): r.replace(" ", "") for r in project["dependencies"]}
    wanted.update({_name(r): r.replace(" ", "") for r in project["optional-dependencies"]["text"]})
    listed = {_name(r): r.replace(" ", "") for r in _pip_section((ROOT / "environment.yml").read_text())}
    assert listed == wanted


def test_torch_is_pinned_exactly():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "torch==2.13.0" in project["dependencies"]
