"""Build the AV-Digits demo corpus in the ORIGINAL release formats (so the same readers serve it).

    python -m hdcid.demo.build [--root DIR] [--seed 0] [--scale 1.0] [--quick] [--fsdd DIR] [--pretrain-scale S]

Video: sklearn handwritten digits through a fixed random conv bank (hdcid.demo.video).
Audio: committed per-second features of synthetic spoken digits (`data/demo_assets/audio_digits.npz`,
features: hdcid.demo.audio), optionally mixed with recorded human speech (`--fsdd DIR`).
Text: class prompts (`data/demo_assets/text_prompts.json`), embedded at read time by a TextBackend.
Everything is drawn from one `numpy.random.Generator(seed)`; same seed -> identical files.
Sources (assets, human speech, audio draws): hdcid.demo.sources; the five datasets:
hdcid.demo.datasets; here: argument checks, `build_demo`, its report and the command line.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from hdcid.demo.datasets import SIZES, compose
from hdcid.demo.sources import audio_sources, human_bank, load_audio_bank, load_prompts
from hdcid.demo.synthetic import stand_in_audio_bank, stand_in_prompts
from hdcid.utils import demo_root


def check_scale(scale, what: str = "scale") -> float:
    """`scale` as a positive finite float; "big", -1, 0 or nan raise ValueError naming `what`."""
    if (
        isinstance(scale, bool)
        or not isinstance(scale, (int, float, np.integer, np.floating))
        or not np.isfinite(scale)
        or scale <= 0
    ):
        raise ValueError(f"{what} must be a positive number (1.0 = the full demo sizes {SIZES}), got {scale!r}")
    return float(scale)


def check_seed(seed, what: str = "seed") -> int:
    """`seed` as an int in [0, 2**32) (numpy's seed range); "abc", 1.5 or -1 raise ValueError."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise ValueError(f"{what} must be an integer in [0, 2**32), got {type(seed).__name__} {seed!r}")
    return int(seed)


def build_demo(
    root: str | Path | None = None,
    seed: int = 0,
    scale: float = 1.0,
    verbose: bool = False,
    prompt_variety: bool = False,
    fsdd: str | Path | None = None,
    fsdd_assignment: dict[str, str] | None = None,
    human_share: float = 0.3,
    pretrain_scale: float | None = None,
) -> dict:
    """Build AV-Digits under `root` (default `hdcid.utils.demo_root()`); returns {dataset: {clips,
    files, paths (relative; zips as <folder>/*.zip), bytes, seconds, ...}} plus "root", "seed",
    "scale", "seconds", "audio_source", "audio_sources", "prompt_source".

    `scale` multiplies every dataset size (min 20 clips each); sizes at 1.0: SIZES.
    `pretrain_scale`: the pretraining set's own scale (None: `scale`), e.g. a 10x pretraining
    corpus beside downstream sets of the default size for a GPU-sized pretraining run.
    `prompt_variety`: give each pretraining clip a random prompt of its class (hdcid extension,
    a `prompt` column in the CSV); default False = one prompt per class as in the original.
    `fsdd`: a folder of recorded spoken digits (FSDD layout or WAVs + labels.csv) mixed into the
    audio pools with speaker-disjoint train / val / test speakers (`fsdd_assignment`: speaker ->
    train | val | test | exclude; default: the `fsdd_assignment` function; `human_share`: the
    probability that a foreground second is human where its pool has human speakers). Never copied: only the
    corpus (git-ignored) holds features derived from them.
    Without the committed assets, stand-in audio/prompts are used (and reported as such).
    Writes `<root>/audio_sources.json`: the sources and the audio standardisation statistics.
    """
    from hdcid.demo.audio import bank_stats
    from hdcid.demo.video import DigitVideo
    from hdcid.utils import atomic_path

    t0 = time.perf_counter()
    scale, seed = check_scale(scale, "build_demo(scale=...)"), check_seed(seed, "build_demo(seed=...)")
    if pretrain_scale is not None:
        pretrain_scale = check_scale(pretrain_scale, "build_demo(pretrain_scale=...)")
    root = Path(root) if root is not None else demo_root()
    root.mkdir(parents=True, exist_ok=True)
    bank, prompts = load_audio_bank(), load_prompts()
    used = bank if bank is not None else stand_in_audio_bank(seed)
    human = human_bank(fsdd, used, fsdd_assignment, seed) if fsdd is not None else None
    info = compose(
        root,
        seed,
        scale,
        DigitVideo(),
        used,
        prompts if prompts is not None else stand_in_prompts(),
        prompt_variety,
        human,
        human_share,
        pretrain_scale,
    )
    sources = audio_sources(bank, human)
    mean, std = bank_stats(used)
    with atomic_path(root / "audio_sources.json") as tmp:
        Path(tmp).write_text(
            json.dumps(
                {
                    **sources,
                    "standardisation": {
                        "what": "corpus audio = (raw log-mel stats - mean) / std (+5% jitter); see hdcid.demo.audio",
                        "mean": [round(float(v), 6) for v in mean],
                        "std": [round(float(v), 6) for v in std],
                    },
                },
                indent=1,
            )
        )
    info.update(
        root=str(root),
        seed=seed,
        scale=scale,
        pretrain_scale=pretrain_scale if pretrain_scale is not None else scale,
        seconds=round(time.perf_counter() - t0, 2),
        audio_source="audio_digits.npz" if bank is not None else "stand-in (asset missing)",
        audio_sources=sources["text"],
        prompt_source="text_prompts.json" if prompts is not None else "stand-in (asset missing)",
    )
    if verbose:
        print(report(info))
    return info


def report(info: dict) -> str:
    lines = [
        f"AV-Digits (seed {info['seed']}, scale {info['scale']}, pretraining set at scale "
        f"{info.get('pretrain_scale', info['scale'])}) written to {info['root']} "
        f"in {info['seconds']:.1f} s; audio: {info['audio_source']}; prompts: {info['prompt_source']}"
    ]
    if info.get("audio_sources"):
        lines.append(f"  audio sources: {info['audio_sources']}")
    for k, v in info.items():
        if isinstance(v, dict):
            extra = {a: b for a, b in v.items() if a not in ("clips", "files", "bytes", "seconds", "paths")}
            lines.append(
                f"  {k:9s} {v['clips']:5d} clips {v['files']:6d} files "
                f"{v['bytes'] / 2**20:7.1f} MiB {v['seconds']:5.1f} s {extra or ''}"
            )
            lines += [f"{'':14s}{p}" for p in v["paths"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", default=None, help="output folder (default: hdcid.utils.demo_root())")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--scale", type=float, default=1.0, help="multiply every dataset size")
    p.add_argument("--quick", action="store_true", help="scale 0.25")
    p.add_argument(
        "--pretrain-scale", type=float, default=None, help="the pretraining set's own scale (default: --scale)"
    )
    p.add_argument(
        "--prompt-variety",
        action="store_true",
        help="a random prompt of its class per pretraining clip (default: one per class)",
    )
    p.add_argument(
        "--fsdd",
        default=None,
        metavar="DIR",
        help="mix recorded spoken digits (FSDD layout or WAVs + labels.csv) into the audio "
        "bank, speaker-disjoint train/val/test (never copied into the project)",
    )
    a = p.parse_args(argv)
    try:
        check_scale(a.scale, "--scale")
        check_seed(a.seed, "--seed")
        if a.pretrain_scale is not None:
            check_scale(a.pretrain_scale, "--pretrain-scale")
    except ValueError as e:
        p.error(str(e))  # exits with status 2 and the usage line, before anything is written
    return build_demo(
        a.root,
        a.seed,
        0.25 if a.quick else a.scale,
        verbose=True,
        prompt_variety=a.prompt_variety,
        fsdd=a.fsdd,
        pretrain_scale=a.pretrain_scale,
    )


if __name__ == "__main__":
    main()
