"""Does the unified codebook unify on the AV-Digits demo? Every target of issue 8 in one table.

    python benchmarks/unified_codes.py                      # tiny presets, 3 seeds, DCID + H-DCID
    python benchmarks/unified_codes.py --seeds 43 --variants dcid --no-avvp \\
        --model n_codes=64 semantic_centering=false --train epochs=12   # one experiment

For each variant and pretraining seed: pretrain the notebooks' tiny preset (`hdcid.notebook.
train_configs(variant, quick=False)`, seed replaced) on the corpus under --data-root, timing it;
then on the AVE test split, foreground seconds only, eval mode, after EVERY epoch (from the epoch
checkpoints): same-second audio-video code agreement and clip-level agreement (most frequent code
equal) per level, codes used and the max share of one code per modality. The max share is also
read from the training usage counts of every epoch. AVVP (first seed's model, every seed's with
--avvp-all): the standard
micro F1 without background, honest protocol, no TOC, 3 head seeds, both directions, and per level
the share of each modality's background seconds on the other's background codes (all AVVP clips,
`hdcid.analysis.background_codes_across`, as notebook 06).
`--transfer` adds the 8 honest cross-modal cells (no TOC, mean of 3 head seeds).

Prints the table and writes everything as JSON (--out, default outputs/bench/unified_codes.json).
Self-contained: builds the demo corpus if --data-root holds none. Checkpoints go to a temporary
folder. Use `OMP_NUM_THREADS=1` on a shared machine; times are wall-clock.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hdcid.analysis.unified import agreement_over_epochs, code_digit_readout  # noqa: E402
from hdcid.data import read_ave  # noqa: E402
from hdcid.downstream.cache import encode_clipset  # noqa: E402
from hdcid.notebook import corpus_is_built, train_configs  # noqa: E402
from hdcid.train import Pretrainer  # noqa: E402
from hdcid.utils import demo_root, output_dir  # noqa: E402

TARGETS = {"agreement": 0.5, "clip_agreement": 0.8, "max_share": 0.5, "avvp_micro_f1": 40.0, "pretrain_s_both": 300.0}


def _value(s: str):
    low = s.lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "none":
        return None
    try:
        return json.loads(s)
    except json.JSONDecodeError:
        return s


def _overrides(pairs) -> dict:
    out = {}
    for p in pairs or []:
        k, _, v = p.partition("=")
        out[k] = _value(v)
    return out


def train_max_share(usage: list[dict]) -> pd.DataFrame:
    """Rows (epoch, level, modality, max_share) from PretrainResult.usage counts (all seconds)."""
    rows = []
    for snap in usage:
        for lv, per in enumerate(snap["counts"]):
            for m, c in per.items():
                c = np.asarray(c, np.float64)
                rows.append(
                    dict(epoch=int(snap["epoch"]), level=lv + 1, modality=m, max_share=float(c.max() / max(c.sum(), 1)))
                )
    return pd.DataFrame(rows)


def _digits(clipset) -> np.ndarray:
    seg = clipset.segment_labels()  # (N, T), background = K
    return np.where(seg == clipset.n_classes, -1, seg)


def readout(model, ave_train, ave_test) -> list[dict]:
    """`code_digit_readout` per level: code -> digit map from AVE train, scored on AVE test."""
    codes = {
        s: {m: encode_clipset(model, cs.features(m), m)[1] for m in ("audio", "video")}
        for s, cs in (("train", ave_train), ("test", ave_test))
    }
    out = []
    for lv in range(codes["test"]["audio"].shape[-1]):

        def pick(d, lv=lv):
            return {m: v[..., lv] for m, v in d.items()}

        out.append(
            dict(
                level=lv + 1,
                **code_digit_readout(
                    pick(codes["train"]),
                    _digits(ave_train),
                    pick(codes["test"]),
                    _digits(ave_test),
                    int(model.codebooks().shape[1]),
                ),
            )
        )
    return out


def run_one(variant: str, seed: int, args, pretrain, ave_test, workdir: Path, ave_train=None) -> dict:
    mcfg, tcfg = train_configs(variant, quick=False)
    mcfg = mcfg.replace(**_overrides(args.model))
    tcfg = tcfg.replace(seed=seed, **_overrides(args.train))
    out = workdir / f"{variant}-{seed}"
    t0 = time.perf_counter()
    res = Pretrainer(mcfg, tcfg, pretrain, out).fit(progress=False)
    seconds = time.perf_counter() - t0
    per_epoch = agreement_over_epochs(res.checkpoints, ave_test)
    share = train_max_share(res.usage)
    ro = readout(res.model, ave_train, ave_test) if ave_train is not None else []
    return dict(
        variant=variant,
        seed=seed,
        seconds=seconds,
        model=res.model,
        model_cfg=mcfg.to_dict(),
        train_cfg=tcfg.to_dict(),
        per_epoch=per_epoch,
        train_share=share,
        readout=ro,
    )


def avvp_background(model, data) -> list[dict]:
    """`background_codes_across` on all AVVP clips (as notebook 06), per level and direction:
    bg_on_bg = share of the target modality's background seconds on a source background code."""
    from hdcid.analysis import background_codes_across, encode_modalities

    idx, lab = {}, {}
    for mod, ann in (("video", "visual"), ("audio", "audio")):
        seg = data[ann].segment_labels()  # (N, T), background = n_classes
        lab[mod] = np.where(seg == data[ann].n_classes, -1, seg)
        idx[mod] = encode_modalities(model, data[ann], (mod,))[mod]["indices"]  # (N, T, L)
    rows = []
    for lv in range(model.cfg.n_levels):
        for src, tgt in (("video", "audio"), ("audio", "video")):
            r = background_codes_across(idx[src][..., lv], lab[src], idx[tgt][..., lv], lab[tgt], model.cfg.n_codes)
            rows.append(dict(level=lv + 1, direction=f"{src[0]}2{tgt[0]}", **r))
    return rows


def avvp_f1(model, data, cache: Path) -> dict:
    from hdcid.downstream import TaskOptions, run_task

    out = {"background": avvp_background(model, data)}
    for d in ("v2a", "a2v"):
        df = run_task("avvp", d, model, data, options=TaskOptions(protocol="honest", cache_dir=cache))
        cross = df[df["eval"] == "cross"]
        out[d] = dict(
            micro_f1=float(cross["micro_f1"].mean()),
            ref_precision=float(cross["ref_precision"].mean()),
            micro_precision=float(cross["micro_precision"].mean()),
            micro_recall=float(cross["micro_recall"].mean()),
        )
    return out


def transfer(model, root, cache: Path) -> dict:
    from hdcid.downstream import TASKS, TaskOptions, load_task_data, run_task

    out = {}
    for task in TASKS:
        data = load_task_data(task, root)
        for d in ("v2a", "a2v"):
            df = run_task(task, d, model, data, options=TaskOptions(protocol="honest", cache_dir=cache))
            out[f"{task} {d}"] = float(df.loc[df["eval"] == "cross", "value"].mean())
    return out


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-root", default=None, help="corpus folder (default: hdcid.utils.demo_root())")
    p.add_argument("--variants", nargs="+", default=["dcid", "hdcid"])
    p.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        default=[43, 44, 45],
        help="pretraining seeds (43 = TrainConfig's default, the notebooks' model)",
    )
    p.add_argument("--model", nargs="*", help="ModelConfig overrides k=v (e.g. n_codes=64)")
    p.add_argument("--train", nargs="*", help="TrainConfig overrides k=v (e.g. epochs=12)")
    p.add_argument("--no-avvp", action="store_true", help="skip the AVVP heads")
    p.add_argument("--avvp-all", action="store_true", help="AVVP heads on every seed's model (default: the first)")
    p.add_argument("--transfer", action="store_true", help="also the 8 honest cross-modal cells (first seed)")
    p.add_argument("--keep", default=None, help="keep the epoch checkpoints in this folder (default: a temp dir)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None, help="JSON output (default outputs/bench/unified_codes.json)")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    root = Path(a.data_root) if a.data_root else demo_root()
    if not corpus_is_built(root):
        from hdcid.demo.build import build_demo

        build_demo(root)
    from hdcid.notebook import Session, pretrain_set

    pretrain = pretrain_set(Session("bench", False, 0, root, torch.device("cpu")))
    ave_test, ave_train = read_ave(root, "test"), read_ave(root, "train")
    results, summary = [], []
    with tempfile.TemporaryDirectory(prefix="hdcid-unified-") as tmp:
        tmp = Path(a.keep) if a.keep else Path(tmp)
        avvp_data = None
        for variant in a.variants:
            for i, seed in enumerate(a.seeds):
                r = run_one(variant, seed, a, pretrain, ave_test, tmp, ave_train)
                pe, ts = r["per_epoch"], r["train_share"]
                last = pe[pe["epoch"] == pe["epoch"].max()]
                for _, row in last.iterrows():
                    summary.append(
                        dict(
                            variant=variant,
                            seed=seed,
                            level=int(row["level"]),
                            agreement=row["agreement"],
                            clip_agreement=row["clip_agreement"],
                            used_a=row["used_a"],
                            used_v=row["used_b"],
                            max_share_heldout=float(
                                pe.loc[pe["level"] == row["level"], ["max_share_a", "max_share_b"]].max().max()
                            ),
                            max_share_train=float(
                                ts.loc[
                                    (ts["level"] == row["level"]) & ts["modality"].isin(["audio", "video"]), "max_share"
                                ].max()
                            ),
                            seconds=r["seconds"],
                        )
                    )
                rec = {k: v for k, v in r.items() if k not in ("model", "per_epoch", "train_share")}
                rec["per_epoch"] = pe.to_dict("records")
                rec["train_share"] = ts.to_dict("records")
                if (i == 0 or a.avvp_all) and not a.no_avvp:
                    if avvp_data is None:
                        from hdcid.downstream.tasks import load_task_data

                        avvp_data = load_task_data("avvp", root)
                    rec["avvp"] = avvp_f1(r["model"], avvp_data, tmp / "codes")
                if i == 0 and a.transfer:
                    rec["transfer"] = transfer(r["model"], root, tmp / "codes")
                results.append(rec)
                print(
                    f"{variant} seed {seed}: {r['seconds']:.1f} s; last epoch:\n"
                    f"{last.to_string(index=False)}\ncode -> digit readout (AVE train -> test, foreground):\n"
                    f"{pd.DataFrame(r['readout']).to_string(index=False, float_format=lambda x: f'{x:.3f}')}",
                    flush=True,
                )
    df = pd.DataFrame(summary)
    ro = pd.DataFrame([dict(variant=r["variant"], **x) for r in results for x in r["readout"]])
    df = df.merge(
        ro.groupby(["variant", "level"])
        .mean(numeric_only=True)
        .reset_index()[["variant", "level", "acc_audio", "acc_video", "class_agreement"]],
        on=["variant", "level"],
        how="left",
    )
    agg = (
        df.groupby(["variant", "level"])
        .agg(
            agreement=("agreement", "mean"),
            agreement_sd=("agreement", "std"),
            clip_agreement=("clip_agreement", "mean"),
            used_a=("used_a", "mean"),
            used_v=("used_v", "mean"),
            max_share_heldout=("max_share_heldout", "max"),
            max_share_train=("max_share_train", "max"),
            acc_a=("acc_audio", "mean"),
            acc_v=("acc_video", "mean"),
            class_agreement=("class_agreement", "mean"),
            pretrain_s=("seconds", "median"),
            seeds=("seed", "count"),
        )
        .reset_index()
    )
    pd.set_option("display.width", 200)
    print(
        f"\nAV-Digits, AVE test foreground seconds, eval mode, mean over pretraining seeds {a.seeds}"
        f" (max share: max over seeds, epochs and audio/video)\nmodel overrides {_overrides(a.model)}, "
        f"train overrides {_overrides(a.train)}"
    )
    print(agg.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    per_var = df.groupby("variant")["seconds"].median()
    print(
        "pretraining time, median over seeds: "
        + ", ".join(f"{v} {s:.1f} s" for v, s in per_var.items())
        + f"; both: {per_var.sum():.1f} s (target < {TARGETS['pretrain_s_both']:.0f} s in the main job)"
    )
    for rec in results:
        if "avvp" in rec:
            print(
                f"AVVP {rec['variant']} (seed {rec['seed']}), honest, no TOC, micro F1 w/o background: "
                + ", ".join(
                    f"{d} {v['micro_f1']:.1f} % (P {v['micro_precision']:.1f}, R {v['micro_recall']:.1f}; "
                    f"ref precision {v['ref_precision']:.1f})"
                    for d, v in rec["avvp"].items()
                    if d != "background"
                )
                + "; background seconds on the source's background codes (all AVVP clips): "
                + ", ".join(
                    f"L{b['level']} {b['direction']} {b['bg_on_bg']:.2f} (events {b['event_on_bg']:.2f})"
                    for b in rec["avvp"]["background"]
                )
            )
        if "transfer" in rec:
            t = rec["transfer"]
            print(
                f"transfer {rec['variant']} (seed {rec['seed']}), honest, no TOC, cross: "
                + ", ".join(f"{k} {v:.1f}" for k, v in t.items())
                + f"; mean {np.mean(list(t.values())):.1f}"
            )
    path = Path(a.out) if a.out else output_dir("bench") / "unified_codes.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = dict(args=vars(a), summary=agg.to_dict("records"), runs=results, targets=TARGETS)
    path.write_text(json.dumps(payload, indent=1, default=float))
    print(f"written {path}")
    return payload


if __name__ == "__main__":
    main()
