"""The setup every notebook shares: parameters -> session, demo corpus, tiny configs, cached models.

    S = start("01_pretraining", quick=QUICK, seed=SEED, data_root=DATA_ROOT)  # prints device, paths
    print(describe_configs(S.quick))
    dcid = pretrained("dcid", S).model          # the cached checkpoint, else pretrain now and cache it
    print(finished(S))                           # "01_pretraining finished in 9.8 s (quick mode)"

Checkpoints live in `cache_dir()/pretrain/<variant>-<key>`, where the key hashes both configs, the
corpus path and a cheap fingerprint of the pretraining corpus (its CSV / text files' bytes and the
name, size and mtime of every feature zip), so a rebuilt corpus never reuses a stale checkpoint.
Used by every notebook in notebooks/ (sources: notebooks/NN_name.py, jupytext); tested in
tests/test_notebook_helpers.py. Nothing else in hdcid imports this module.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from hdcid.config import ModelConfig, TrainConfig
from hdcid.data import DataFormatError, read_pretrain
from hdcid.data.pretrain import PRETRAIN_DIR
from hdcid.demo.build import check_scale, check_seed
from hdcid.train import Pretrainer, PretrainResult, load_or_pretrain
from hdcid.utils import cache_dir, data_dir, demo_root, get_device, is_quick, output_dir, parse_bool, seed_everything

VARIANTS = ("dcid", "hdcid")
QUICK_EPOCHS = 2  # quick mode: 2 epochs, H-DCID's level 2 from epoch 1, so every code path runs
QUICK_STEPS = 8  # steps per epoch in quick mode: a visible loss curve, ~10 s more on a quiet 2-core CPU
# a corpus counts as built when its first and its last written file exist
_FIRST = Path("vggsound40k") / "vggsound-avel40k.csv"
_LAST = Path("feature_extractor") / "feature_extractor" / "vggsound2ucf.csv"


@dataclass
class Session:
    """What a notebook's setup cell resolved. nb: notebook name ("01_pretraining"); quick: quick
    mode; seed: the seed given to `seed_everything`; data_root: the corpus folder; device: where
    models run; t_start: `time.perf_counter()` at `start`; built: `build_demo`'s info dict when the
    corpus was built by `start`, else None; cache: objects read once per session (pretraining set)."""

    nb: str
    quick: bool
    seed: int
    data_root: Path
    device: torch.device
    t_start: float = field(default_factory=time.perf_counter)
    built: dict | None = None
    cache: dict = field(default_factory=dict, repr=False)
    fsdd: Path | None = None
    audio_sources: str = "unknown (corpus built before audio_sources.json)"


def corpus_is_built(data_root: str | Path) -> bool:
    """True when the AV-Digits layout under data_root is complete (first and last file present)."""
    root = Path(data_root)
    return (root / _FIRST).exists() and (root / _LAST).exists()


def start(
    nb: str,
    quick: bool | None = None,
    seed: int = 0,
    data_root: str | Path | None = None,
    demo_scale: float | None = None,
    verbose: bool = True,
    fsdd: str | Path | None = None,
) -> Session:
    """Resolve a notebook's parameters and prepare its run.

    quick: None reads `HDCID_QUICK` (`hdcid.utils.is_quick`; both go through `parse_bool`);
    data_root: None is `hdcid.utils.demo_root()`, which is built if missing; any other folder must
    already hold a complete corpus (FileNotFoundError otherwise: a typo never builds a corpus);
    demo_scale: the scale used only if the corpus must be built (None: 0.25 in quick mode, 1.0
    otherwise; else a positive number); fsdd: a folder of recorded spoken digits (FSDD) mixed into
    the corpus's audio (`build_demo(..., fsdd=)`; with data_root None the corpus then lives in
    `<demo_root>_fsdd`, beside the default one, and is built there if missing). Seeds everything
    with `seed` (an int in [0, 2**32)), and (verbose) prints the build report, the line
    `notebook NB | device: D | quick mode: Q | seed: S | torch V`, the corpus's audio sources and
    the data/cache/figure folders. Returns the Session.
    """
    from hdcid.demo.sources import read_audio_sources

    t0 = time.perf_counter()
    quick = is_quick() if quick is None else parse_bool(quick, "start(quick=...)")
    seed = check_seed(seed, "start(seed=...)")
    if demo_scale is not None:
        demo_scale = check_scale(demo_scale, "start(demo_scale=...)")
    root = Path(data_root) if data_root else demo_root()
    default = demo_root()
    if fsdd and not data_root:
        root = default = root.with_name(root.name + "_fsdd")
    if not corpus_is_built(root) and root.resolve() != default.resolve():
        missing = [str(p) for p in (_FIRST, _LAST) if not (root / p).exists()]
        raise FileNotFoundError(
            f"start(data_root={str(data_root)!r}): no complete corpus there (missing {', '.join(missing)}). "
            f"Only the default demo location {default} (HDCID_DEMO_ROOT) is built automatically; "
            f"fix the path, pass data_root=None, or build it with `python -m hdcid.demo.build --root {root}`"
        )
    session = Session(
        nb=nb,
        quick=quick,
        seed=seed,
        data_root=root,
        device=get_device(),
        t_start=t0,
        fsdd=Path(fsdd) if fsdd else None,
    )
    seed_everything(seed)
    if not corpus_is_built(root):
        from hdcid.demo.build import build_demo, report

        session.built = build_demo(root, seed=0, scale=demo_scale or (0.25 if quick else 1.0), fsdd=fsdd)
        if verbose:
            print(report(session.built))
    sources = read_audio_sources(root)
    if sources is not None:
        session.audio_sources = sources["text"]
        if fsdd and sources.get("human") is None:
            print(
                f"note: FSDD = {fsdd!r} was given but the corpus at {root} was built without human "
                "speech; delete it (or pick another DATA_ROOT) to rebuild with it"
            )
    if verbose:
        print(
            f"notebook {nb} | device: {session.device} | quick mode: {quick} | seed: {seed} | torch {torch.__version__}"
        )
        print(f"audio: {session.audio_sources}")
        print(f"data: {root}\ncache: {cache_dir()}\nfigures: {output_dir('figures')}")
    return session


def finished(session: Session) -> str:
    """The closing line: '<nb> finished in <seconds> s (quick|full mode)'."""
    return (
        f"{session.nb} finished in {time.perf_counter() - session.t_start:.1f} s "
        f"({'quick' if session.quick else 'full'} mode)"
    )


PRESETS = ("tiny", "paper")


def _env_positive_int(name: str) -> int | None:
    """The environment variable `name` as a positive int, None when unset or empty."""
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) <= 0:
        raise ValueError(f"environment variable {name} must be a positive integer, got {value!r}")
    return int(value)


def run_preset() -> tuple[str, int | None, int | None]:
    """(preset, epochs, batch_size) for every notebook's pretraining, from the environment:
    `HDCID_PRESET` ("tiny", the default, or "paper"), `HDCID_EPOCHS` and `HDCID_BATCH` (positive
    integers overriding the preset's; unset: the preset's own). A value outside these raises
    ValueError naming the variable."""
    preset = os.environ.get("HDCID_PRESET", "").strip().lower() or "tiny"
    if preset not in PRESETS:
        raise ValueError(f"environment variable HDCID_PRESET must be one of {PRESETS}, got {preset!r}")
    return preset, _env_positive_int("HDCID_EPOCHS"), _env_positive_int("HDCID_BATCH")


def train_configs(variant: str, quick: bool) -> tuple[ModelConfig, TrainConfig]:
    """(ModelConfig, TrainConfig) of `variant` for the demo corpus: `ModelConfig.tiny(variant)` and
    `TrainConfig.tiny(variant)` unless `run_preset()` says otherwise. `HDCID_PRESET=paper` gives the
    published sizes and schedule (`ModelConfig.paper` / `TrainConfig.paper`: 400 codes x 256 dims,
    full attention, batch 80), with the input widths of the demo's features (video channels, MiniLM
    word vectors) instead of the authors' (512, 768): a GPU-sized run of the same notebooks.
    `HDCID_EPOCHS` / `HDCID_BATCH` override the epochs / batch. Quick mode: QUICK_EPOCHS epochs x
    QUICK_STEPS steps with H-DCID's level 2 from epoch 1, so every code path of the full schedule
    still runs."""
    preset, epochs, batch = run_preset()
    tiny = ModelConfig.tiny(variant)
    if preset == "paper":
        mcfg = ModelConfig.paper(variant, video_dim=tiny.video_dim, word_dim=tiny.word_dim)
    else:
        mcfg = tiny
    tcfg = getattr(TrainConfig, preset)(variant)
    if quick:
        tcfg = tcfg.replace(epochs=QUICK_EPOCHS, level2_start_epoch=1, max_steps_per_epoch=QUICK_STEPS)
    if epochs is not None:
        tcfg = tcfg.replace(epochs=epochs, level2_start_epoch=min(tcfg.level2_start_epoch, epochs - 1))
    if batch is not None:
        tcfg = tcfg.replace(batch_size=batch)
    return mcfg, tcfg


def describe_configs(quick: bool, variants: tuple[str, ...] = VARIANTS) -> str:
    """One line per variant: codebook levels x codes x dims and the training schedule."""
    preset = run_preset()[0]
    lines = []
    for v in variants:
        m, t = train_configs(v, quick)
        lines.append(
            f"{v}: ModelConfig.{preset} - {m.n_levels} level(s) x {m.n_codes} codes x {m.hidden_dim} dims | "
            f"TrainConfig.{preset} - {t.epochs} epochs, batch {t.batch_size}, lr {t.lr}, "
            f"max steps/epoch {t.max_steps_per_epoch}, level 2 from epoch {t.level2_start_epoch}, {t.dtype}"
        )
    return "\n".join(lines)


def _stat_listing(folder: Path) -> list[tuple[str, int, int]]:
    """(name, size, mtime_ns) of every file directly in folder, sorted; [] when it is missing."""
    if not folder.is_dir():
        return []
    with os.scandir(folder) as it:
        return sorted((e.name, (s := e.stat()).st_size, s.st_mtime_ns) for e in it if e.is_file())


def corpus_fingerprint(data_root: str | Path) -> str:
    """A cheap hash (sha1 hex) of the pretraining corpus under data_root: the bytes of every file
    directly in `vggsound40k/` (CSV, categories, prompts), the listing (name, size, mtime) of every
    folder of feature/label zips, and the size and mtime of the MiniLM prompt features
    (`<data>/demo_assets/text_minilm.npz`, used for the text). Reads no zip: ~60 ms for the
    full 2,000-clip corpus (one stat per zip)."""
    d = Path(data_root) / PRETRAIN_DIR
    h = hashlib.sha1()
    for f in sorted(d.glob("*")) if d.is_dir() else []:
        if f.is_file():
            h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    for sub in ("feature/audio/zip", "feature/video/zip", "label/zip"):
        h.update(json.dumps([sub, _stat_listing(d / sub)]).encode())
    text = data_dir() / "demo_assets" / "text_minilm.npz"
    st = text.stat() if text.exists() else None
    h.update(json.dumps(["text", st and (st.st_size, st.st_mtime_ns)]).encode())
    return h.hexdigest()


def cache_key(variant: str, session: Session) -> str:
    """10 hex digits keying a checkpoint: sha1 of both configs, the resolved corpus path and
    `corpus_fingerprint`. Computed once per variant and session."""
    memo = session.cache.setdefault("keys", {})
    if variant not in memo:
        mcfg, tcfg = train_configs(variant, session.quick)
        if "fingerprint" not in session.cache:
            session.cache["fingerprint"] = corpus_fingerprint(session.data_root)
        key = json.dumps(
            [mcfg.to_dict(), tcfg.to_dict(), str(session.data_root.resolve()), session.cache["fingerprint"]],
            sort_keys=True,
        )
        memo[variant] = hashlib.sha1(key.encode()).hexdigest()[:10]
    return memo[variant]


def checkpoint_dir(variant: str, session: Session) -> Path:
    """`cache_dir()/pretrain/<variant>-<cache_key>`: the folder of `epoch-{k}.pt` files, shared by
    every notebook of the same mode and corpus."""
    return cache_dir() / "pretrain" / f"{variant}-{cache_key(variant, session)}"


def is_cached(variant: str, session: Session) -> bool:
    """True when the final epoch checkpoint of `variant` exists (pretrained() will only load)."""
    _, tcfg = train_configs(variant, session.quick)
    return (checkpoint_dir(variant, session) / f"epoch-{tcfg.epochs - 1}.pt").exists()


def pretrain_set(session: Session) -> Any:
    """The pretraining ClipSet of session.data_root (video, audio, prompt words), read once per
    session. Uses the committed MiniLM prompt features, else (with a printed note) the hashed
    stand-in `hdcid.demo.synthetic.HashText(384)`."""
    if "pretrain_set" not in session.cache:
        try:
            session.cache["pretrain_set"] = read_pretrain(session.data_root)
        except (ImportError, DataFormatError) as err:
            from hdcid.demo.synthetic import HashText

            print(f"text: MiniLM prompt features unavailable ({err}); using the hashed stand-in")
            session.cache["pretrain_set"] = read_pretrain(session.data_root, HashText(384))
    return session.cache["pretrain_set"]


def pretrained(
    variant: str, session: Session, callback: Callable[[dict], Any] | None = None, progress: bool = True
) -> PretrainResult:
    """The `variant` ("dcid" or "hdcid") model of `train_configs` (tiny unless HDCID_PRESET):
    loaded from `checkpoint_dir` when its final checkpoint exists, else pretrained now on
    `pretrain_set(session)` (resuming from any earlier epoch there) and cached. callback(row) is
    called after every training step (see `Pretrainer.fit`). Returns the PretrainResult (model in
    eval mode on session.device, history, usage, checkpoint paths); prints which of the two
    happened."""
    mcfg, tcfg = train_configs(variant, session.quick)
    out = checkpoint_dir(variant, session)
    if is_cached(variant, session):
        print(f"{variant}: loading the cached checkpoint {out.name}")
        return load_or_pretrain(mcfg, tcfg, None, out, device=session.device)
    print(f"{variant}: pretraining {tcfg.epochs} epochs -> {out}")
    return Pretrainer(mcfg, tcfg, pretrain_set(session), out, device=session.device).fit(
        progress=progress, callback=callback
    )
