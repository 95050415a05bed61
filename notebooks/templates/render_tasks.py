"""The four task notebooks 05-08 share one structure, kept here in one place.

    python notebooks/templates/render_tasks.py           # rewrite notebooks/05_ave.py ... 08_ucf_vggsound.py
    python notebooks/templates/render_tasks.py --check   # exit 1 when a committed source differs

`task.py` is the shared jupytext source. Inline placeholders {{NB}}, {{TITLE}}, {{TASK}}, {{SEE}} take a
short text; a line `# {{NAME}}` is replaced by whole lines: INTRO (the task's paragraph), RUNTIME (from
docs/runtimes.json, `hdcid.runtimes`), RECIPE (cells before the grid: 05 writes the downstream method
by hand, `recipe_05.py`) and DETAILS (`details_video.py`: confusion matrix and per-class accuracy;
`details_segment.py`: timelines and per-class F1; 06 adds `details_avvp.py`, the background codes). Edit these files, never 05-08 directly, then run
`make notebooks-sync` (this script, the runtime lines, `jupytext --sync`); tests/test_notebooks.py
checks that 05-08 are what this script renders.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
NOTEBOOKS = HERE.parent

TASKS = {
    "05_ave": dict(
        TITLE="05 · AVE: cross-modal event classification",
        TASK="ave",
        RECIPE="recipe_05.py",
        DETAILS="details_video.py",
        SEE="a confusion matrix and per-class accuracy.",
        INTRO="""\
AVE clips contain one audio-visual event over part of the ten seconds. A head (affine per second,
max over time, affine) is trained on one modality's codes to predict the event class and tested on
the *other* modality's codes. Metric: top-1 accuracy (%). Before the grid runs, the head, the loss,
one training epoch and each protocol's splits are written out by hand and checked against the package.""",
    ),
    "06_avvp": dict(
        TITLE="06 · AVVP: cross-modal event localisation",
        TASK="avvp",
        RECIPE=None,
        DETAILS=("details_segment.py", "details_avvp.py"),
        SEE="segment timelines of predicted vs true events and per-class F1.",
        INTRO="""\
AVVP clips carry per-second, multi-label audio and visual events. A per-second head is trained on one
modality's codes with the visual (or audio) annotations and tested on the other modality with its own
annotations. Metric: the original's batch-averaged precision over second x class (background
included), plus standard F1s.""",
    ),
    "07_ave_to_avvp": dict(
        TITLE="07 · AVE -> AVVP: cross-modal and cross-dataset",
        TASK="ave_avvp",
        RECIPE=None,
        DETAILS="details_segment.py",
        SEE="segment timelines of predicted vs true events and per-class F1.",
        INTRO="""\
The head is trained on AVE clips of the classes shared with AVVP in one modality and tested on AVVP
clips in the other modality: both the modality and the dataset change. Metric: the original's
reference F1 (%).""",
    ),
    "08_ucf_vggsound": dict(
        TITLE="08 · UCF101 <-> VGGSound: cross-modal and cross-dataset",
        TASK="ucf_vgg",
        RECIPE=None,
        DETAILS="details_video.py",
        SEE="a confusion matrix and per-class accuracy.",
        INTRO="""\
Video-only UCF clips and audio VGGSound clips share classes by index; a head trained on UCF video codes
is tested on VGGSound audio codes (v2a) and the reverse (a2v). Metric: top-1 accuracy (%).""",
    ),
}


def _block(filenames: str | tuple[str, ...] | None) -> str:
    """Files of whole cells, each followed by one blank line (empty when there is none)."""
    names = (filenames,) if isinstance(filenames, str) else filenames or ()
    return "".join((HERE / f).read_text().rstrip("\n") + "\n\n" for f in names)


def render(name: str, runtimes: dict | None = None) -> str:
    """The jupytext source of task notebook `name` ("05_ave" ...)."""
    from hdcid.runtimes import runtime_line

    spec = TASKS[name]
    text = (HERE / "task.py").read_text()
    whole = {
        "INTRO": "\n".join("# " + line if line else "#" for line in spec["INTRO"].splitlines()) + "\n",
        "RUNTIME": "# " + runtime_line(name, runtimes) + "\n",
        "RECIPE": _block(spec["RECIPE"]),
        "DETAILS": _block(spec["DETAILS"]),
    }
    for key, value in whole.items():
        line = f"# {{{{{key}}}}}\n" + ("\n" if key in ("RECIPE", "DETAILS") else "")
        if text.count(line) != 1:
            raise ValueError(f"{HERE / 'task.py'}: expected exactly one line '# {{{{{key}}}}}'")
        text = text.replace(line, value)
    for key in ("NB", "TITLE", "TASK", "SEE"):
        text = text.replace(f"{{{{{key}}}}}", name if key == "NB" else spec[key])
    if "{{" in text:
        raise ValueError(f"{name}: placeholder left after rendering: {text[text.index('{{') :][:40]!r}")
    return text


def main(argv: list[str]) -> int:
    check = "--check" in argv
    differ = []
    for name in TASKS:
        path = NOTEBOOKS / f"{name}.py"
        text = render(name)
        if path.read_text() != text:
            differ.append(name)
            if not check:
                path.write_text(text)
    print(f"task notebooks {'differing' if check else 'rewritten'}: {', '.join(differ) or 'none'}")
    return 1 if (check and differ) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
