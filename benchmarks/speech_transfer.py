"""Transfer of the AV-Digits audio to unseen human speakers (FSDD), leave one speaker out.

    python benchmarks/speech_transfer.py [--fsdd DIR] [--quick] [--variant dcid] [--work DIR]
                                         [--seeds 0 1 2] [--speakers jackson ...] [--out FILE.csv]
                                         [--corpora default fsdd] [--fsdd-speakers ...] [--merge A.csv ...]

For every FSDD speaker X (held out):
  (a) raw features, nearest centroid: centroids of the committed synthetic bank's train voices
      (standardised 128-d rows) -> X's recordings (`hdcid.demo.audio_features`); and the same with
      the other three speakers' rows added to the centroids (human in training, X never);
  (b) V->A transfer, AVE task, honest protocol (`run_task("ave", "v2a")`: head trained on video
      codes of AVE train, epoch picked on AVE val video), cross-modal test on the AVE test clips
      with every foreground audio second replaced by a recording of X saying that digit
      (`hdcid.demo.transfer.with_human_audio`), for a tiny model pretrained on
        - "default": the corpus built WITHOUT --fsdd (no human speech anywhere);
        - "fsdd": a corpus built WITH --fsdd whose train pool holds the other speakers and X is
          excluded (X is never in pretraining or the head's training);
      and the same heads on the unmodified AVE test (held-out SYNTHETIC voices).
Prints one table (mean over held-out speakers and per speaker) and writes it as CSV.
Full mode: tiny presets (TrainConfig.tiny), corpus scale 1.0. --quick: scale 0.25, 2x8 steps.
Corpora and checkpoints go under --work (default outputs/speech_transfer, git-ignored).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hdcid.data import read_ave, read_pretrain  # noqa: E402
from hdcid.data.speech import read_speech  # noqa: E402
from hdcid.demo.build import build_demo  # noqa: E402
from hdcid.demo.sources import load_audio_bank  # noqa: E402
from hdcid.demo.transfer import default_fsdd_dir, human_features, nearest_centroid_to_human, with_human_audio  # noqa: E402
from hdcid.downstream import TaskOptions, run_task  # noqa: E402
from hdcid.notebook import corpus_is_built, train_configs  # noqa: E402
from hdcid.train import load_or_pretrain  # noqa: E402
from hdcid.utils import output_dir, seed_everything  # noqa: E402


def corpus(work: Path, name: str, scale: float, fsdd=None, assignment=None, human_share: float = 0.3) -> Path:
    root = work / name / "corpus"
    if not corpus_is_built(root):
        t0 = time.perf_counter()
        build_demo(root, seed=0, scale=scale, fsdd=fsdd, fsdd_assignment=assignment, human_share=human_share)
        print(f"built {name} in {time.perf_counter() - t0:.1f} s", flush=True)
    return root


def model_for(work: Path, name: str, root: Path, variant: str, quick: bool):
    mcfg, tcfg = train_configs(variant, quick)
    t0 = time.perf_counter()
    seed_everything(0)
    res = load_or_pretrain(
        mcfg, tcfg, read_pretrain(root), work / name / f"{variant}-{'quick' if quick else 'full'}", progress=False
    )
    print(f"model {name}: {time.perf_counter() - t0:.1f} s", flush=True)
    return res.model


def transfer(model, root: Path, human: dict, speakers, seeds, quick: bool, codes: Path) -> dict:
    """{speaker or 'heldout voices': mean V->A top-1 % over seeds} on the AVE test clips."""
    data = {s: read_ave(root, s) for s in ("train", "val", "test")}
    out = {}
    for sp in list(speakers) + ["heldout voices"]:
        d = dict(data)
        if sp != "heldout voices":
            d["test"] = with_human_audio(data["test"], human, sp, np.random.default_rng(0))
        opts = TaskOptions(protocol="honest", seeds=seeds, quick=quick, cache_dir=codes)
        df = run_task("ave", "v2a", model, d, options=opts)
        out[sp] = float(df[df["eval"] == "cross"]["value"].mean())
    return out


def main(argv: list[str] | None = None) -> pd.DataFrame:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fsdd", default=None, help="FSDD folder (default $HDCID_FSDD or ../shared/data/fsdd)")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--variant", default="dcid", choices=["dcid", "hdcid"])
    p.add_argument("--work", default=None)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--speakers", nargs="+", default=None, help="held-out speakers (default: all)")
    p.add_argument(
        "--corpora",
        nargs="+",
        default=["default", "fsdd"],
        choices=["default", "fsdd"],
        help="which corpora to pretrain on (split a long run over processes; merge the CSVs)",
    )
    p.add_argument(
        "--fsdd-speakers", nargs="+", default=None, help="held-out speakers of the --fsdd corpora (default: --speakers)"
    )
    p.add_argument(
        "--human-share",
        type=float,
        default=0.3,
        help="--fsdd corpora: probability that a second is human (build_demo's human_share)",
    )
    p.add_argument("--out", default=None)
    p.add_argument("--merge", nargs="*", default=[], help="CSVs of other runs to include in the table")
    a = p.parse_args(argv)
    fsdd = Path(a.fsdd) if a.fsdd else default_fsdd_dir()
    if fsdd is None or not fsdd.exists():
        sys.exit(f"no FSDD recordings at {fsdd}: pass --fsdd DIR or set HDCID_FSDD")
    work = Path(a.work) if a.work else output_dir("speech_transfer")
    scale = 0.25 if a.quick else 1.0
    t0 = time.perf_counter()
    speech = read_speech(fsdd)
    bank = load_audio_bank()
    human = human_features(speech, bank)
    speakers = a.speakers or speech.speakers
    rows = []
    nc = nearest_centroid_to_human(bank, human)
    nc_h = nearest_centroid_to_human(bank, human, with_other_speakers=True)
    for sp in speakers + ["heldout voices"]:
        rows.append({"measure": "raw nearest-centroid", "corpus": "synthetic bank", "held_out": sp, "value": nc[sp]})
        if sp != "heldout voices":
            rows.append(
                {
                    "measure": "raw nearest-centroid",
                    "corpus": "bank + other speakers",
                    "held_out": sp,
                    "value": nc_h[sp],
                }
            )
    if "default" in a.corpora:
        root = corpus(work, "default", scale)
        res = transfer(
            model_for(work, "default", root, a.variant, a.quick),
            root,
            human,
            speakers,
            a.seeds,
            a.quick,
            work / "codes",
        )
        rows += [{"measure": "V->A transfer", "corpus": "default", "held_out": k, "value": v} for k, v in res.items()]
    for sp in (a.fsdd_speakers or speakers) if "fsdd" in a.corpora else []:
        assignment = {s: ("exclude" if s == sp else "train") for s in speech.speakers}
        name = f"fsdd-without-{sp}"
        root = corpus(work, name, scale, fsdd=speech, assignment=assignment, human_share=a.human_share)
        res = transfer(
            model_for(work, name, root, a.variant, a.quick), root, human, [sp], a.seeds, a.quick, work / "codes"
        )
        rows += [
            {
                "measure": "V->A transfer",
                "corpus": "--fsdd (X excluded)",
                "held_out": k if k == sp else f"heldout voices ({sp} run)",
                "value": v,
            }
            for k, v in res.items()
        ]
    df = pd.DataFrame(rows)
    if a.merge:
        df = pd.concat([df] + [pd.read_csv(f)[df.columns] for f in a.merge]).drop_duplicates(
            ["measure", "corpus", "held_out"], keep="last"
        )
    human_rows = ~df["held_out"].str.startswith("heldout voices")
    summary = (
        df.assign(kind=np.where(human_rows, "held-out human speakers (mean)", "held-out synthetic voices"))
        .groupby(["measure", "corpus", "kind"], sort=False)["value"]
        .mean()
        .unstack("kind")
        .round(1)
    )
    mode = "quick" if a.quick else "full"
    print(
        f"\nspeech transfer ({a.variant}, tiny presets, {mode} mode, honest protocol, seeds {a.seeds}, "
        f"speakers {speakers}; {time.perf_counter() - t0:.0f} s)"
    )
    print(summary.to_string())
    print("\nper held-out speaker:")
    per = df.pivot_table(index=["measure", "corpus"], columns="held_out", values="value", sort=False)
    print(per.round(1).to_string())
    out = Path(a.out) if a.out else work / f"speech_transfer_{mode}.csv"
    df.assign(mode=mode, variant=a.variant).to_csv(out, index=False)
    print(f"wrote {out}")
    return df


if __name__ == "__main__":
    main()
