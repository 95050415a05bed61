"""Figures: each function draws data it is given and returns a matplotlib Figure.

No function here computes statistics (see `hdcid.analysis`) or calls `plt.show()`; the notebook
displays the figure. `save_figure` writes `<output>/figures/NN-what.png` named after the notebook.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib.patches as mpatches
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from hdcid.utils import atomic_path, output_dir

NON_LOSS_COLUMNS = ("step", "epoch", "agreement", "lr", "time", "seconds", "level2_active", "batch")


def _np(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _new(nrows: int = 1, ncols: int = 1, size=(5.0, 3.6), **kw):
    """A Figure (not registered with pyplot's state machine, so figures never pile up)."""
    fig = Figure(figsize=(size[0] * ncols, size[1] * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


def _histories(h) -> dict[str, pd.DataFrame]:
    if isinstance(h, pd.DataFrame):
        return {"": h}
    return dict(h)


def _xaxis(df: pd.DataFrame) -> tuple[np.ndarray, str]:
    if "step" in df.columns:
        return df["step"].to_numpy(), "step"
    return np.arange(len(df)), "step"


# ------------------------------------------------------------------------------------- training
def loss_curves(history, terms: Sequence[str] | None = None, ncols: int = 3,
                title: str = "Pretraining losses per term") -> Figure:
    """Small multiples, one panel per loss term (column of `history`), one line per run.

    history: a DataFrame (one row per step) or {run name: DataFrame}; `terms` defaults to every
    numeric column except step/epoch/agreement. Shown in notebook 01.
    """
    runs = _histories(history)
    if terms is None:
        seen: list[str] = []
        for df in runs.values():
            for c in df.columns:
                if c not in seen and c not in NON_LOSS_COLUMNS and pd.api.types.is_numeric_dtype(df[c]):
                    seen.append(c)
        terms = seen
    if not terms:
        raise ValueError("loss_curves: no loss columns found in the history")
    nrows = int(np.ceil(len(terms) / ncols))
    fig, axes = _new(nrows, min(ncols, len(terms)), size=(3.6, 2.6))
    for ax, term in zip(axes.flat, terms):
        for j, (name, df) in enumerate(runs.items()):  # one colour per run in every panel
            if term in df.columns:
                x, xlabel = _xaxis(df)
                ax.plot(x, df[term].to_numpy(), label=name or None, lw=1.2, color=f"C{j}")
        ax.set_title(term, fontsize=10)
        ax.set_xlabel(xlabel if runs else "step", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(terms):]:
        ax.set_visible(False)
    if len(runs) > 1:
        axes.flat[0].legend(fontsize=7)
    fig.suptitle(title)
    return fig


def agreement_curve(history, column: str = "agreement",
                    title: str = "Cross-modal code agreement during pretraining") -> Figure:
    """Fraction of co-located segments whose modalities chose the same code, per step (nb 01)."""
    fig, axes = _new()
    ax = axes[0, 0]
    for name, df in _histories(history).items():
        if column not in df.columns:
            raise ValueError(f"agreement_curve: history {name!r} has no column {column!r}; "
                             f"columns are {list(df.columns)}")
        x, xlabel = _xaxis(df)
        ax.plot(x, df[column].to_numpy(), label=name or None)
        ax.set_xlabel(xlabel)
    ax.set_ylabel("agreement")
    ax.set_ylim(0, 1)
    if len(_histories(history)) > 1:
        ax.legend()
    ax.set_title(title)
    return fig


# ---------------------------------------------------------------------------------------- usage
def usage_histograms(counts, modalities: Sequence[str], perplexities=None,
                     title: str = "Code usage per modality and level") -> Figure:
    """Bar chart of how often each code is used: rows = levels, columns = modalities (nb 02).

    counts: (Mo, L, M); perplexities: optional (Mo, L) shown in the panel titles.
    """
    c = _np(counts)
    if c.ndim != 3 or c.shape[0] != len(modalities):
        raise ValueError(f"counts: expected ({len(modalities)}, L, M), got {c.shape}")
    Mo, L, M = c.shape
    fig, axes = _new(L, Mo, size=(4.2, 2.4), sharey="row")
    for i, m in enumerate(modalities):
        for level in range(L):
            ax = axes[level, i]
            ax.bar(np.arange(M), c[i, level], width=1.0, color=f"C{i}")
            sub = f"{m}, level {level + 1}"
            if perplexities is not None:
                sub += f" (perplexity {_np(perplexities)[i, level]:.1f})"
            ax.set_title(sub, fontsize=9)
            ax.set_xlabel("code", fontsize=8)
            ax.tick_params(labelsize=7)
        axes[:, 0][0].set_ylabel("segments")
    fig.suptitle(title)
    return fig


def usage_over_training(df: pd.DataFrame, x: str = "epoch", columns: Sequence[str] = ("dead",),
                        hue: str | None = "level", title: str = "Codebook usage over training") -> Figure:
    """Lines of usage statistics (dead codes, resets, perplexity...) against epochs (nb 02)."""
    missing = [c for c in (x, *columns) if c not in df.columns]
    if missing:
        raise ValueError(f"usage_over_training: columns {missing} missing; have {list(df.columns)}")
    fig, axes = _new(1, len(columns), size=(4.2, 3.0))
    groups = df.groupby(hue) if hue and hue in df.columns else [("", df)]
    for ax, col in zip(axes.flat, columns):
        for key, g in groups:
            ax.plot(g[x].to_numpy(), g[col].to_numpy(), marker="o", label=f"{hue} {key}" if key != "" else None)
        ax.set_xlabel(x)
        ax.set_title(col)
        if hue and hue in df.columns:
            ax.legend(fontsize=7)
    fig.suptitle(title)
    return fig


def ownership_bars(summary: pd.DataFrame, title: str = "Who uses each code") -> Figure:
    """Stacked bars: number of codes shared by all modalities / owned by one / unused, per run.

    summary: rows = run (e.g. "DCID", "H-DCID level 1"), columns = owner categories (counts).
    """
    fig, axes = _new(size=(6.0, 3.4))
    ax = axes[0, 0]
    bottom = np.zeros(len(summary))
    for j, col in enumerate(summary.columns):
        vals = summary[col].to_numpy(dtype=float)
        ax.barh(summary.index.astype(str), vals, left=bottom, label=col, color=f"C{j}")
        bottom += vals
    ax.set_xlabel("codes")
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(title)
    return fig


def agreement_heatmap(matrix, modalities: Sequence[str], title: str = "Modality x modality agreement",
                      ax=None) -> Figure:
    """Heatmap of `analysis.agreement_matrix` (values annotated) (nb 02, 04)."""
    import seaborn as sns

    fig, axes = (ax.figure, None) if ax is not None else _new(size=(4.0, 3.4))
    ax = ax if ax is not None else axes[0, 0]
    sns.heatmap(_np(matrix), annot=True, fmt=".2f", vmin=0, vmax=1, cmap="viridis", square=True,
                xticklabels=modalities, yticklabels=modalities, ax=ax, cbar_kws=dict(shrink=0.8))
    ax.set_title(title)
    return fig


def cooccurrence_heatmap(joint, title: str = "Level-1 x level-2 code co-occurrence") -> Figure:
    """Joint counts of level-1 (rows) and level-2 (columns) codes, used codes only (nb 04)."""
    j = _np(joint)
    rows, cols = np.flatnonzero(j.sum(1)), np.flatnonzero(j.sum(0))
    fig, axes = _new(size=(5.4, 4.4))
    ax = axes[0, 0]
    im = ax.imshow(np.log1p(j[np.ix_(rows, cols)]), cmap="viridis", aspect="auto", interpolation="nearest")
    ax.set_xlabel(f"level-2 code ({len(cols)} used)")
    ax.set_ylabel(f"level-1 code ({len(rows)} used)")
    step_r, step_c = max(1, len(rows) // 10), max(1, len(cols) // 10)
    ax.set_yticks(np.arange(0, len(rows), step_r), rows[::step_r], fontsize=7)
    ax.set_xticks(np.arange(0, len(cols), step_c), cols[::step_c], fontsize=7)
    fig.colorbar(im, ax=ax, shrink=0.8, label="log(1 + segments)")
    ax.set_title(title)
    return fig


def level_information_bars(info: pd.DataFrame, value: str = "nmi",
                           title: str = "What each level's codes tell (share of entropy explained)") -> Figure:
    """Grouped bars of `analysis.level_information`: x = target, one bar per level (nb 04)."""
    import seaborn as sns

    fig, axes = _new(size=(5.6, 3.4))
    sns.barplot(data=info, x="target", y=value, hue="level", ax=axes[0, 0], palette="viridis")
    axes[0, 0].set_title(title)
    return fig


# ------------------------------------------------------------------------------------------ TOC
def toc_criterion(similarity, variance, score, selected, w_sim: float = 0.7,
                  title: str = "TOC criterion per dimension") -> Figure:
    """Left: each dimension's similarity vs variance, kept dims marked. Right: scores sorted
    (descending) with kept dims marked (nb 03). All inputs (D,) except `selected` (k,) indices."""
    sim, var, s = _np(similarity), _np(variance), _np(score)
    sel = np.zeros(len(s), bool)
    sel[_np(selected).astype(int)] = True
    fig, axes = _new(1, 2, size=(4.6, 3.6))
    ax = axes[0, 0]
    ax.scatter(sim[~sel], var[~sel], s=10, c="0.65", label="dropped")
    ax.scatter(sim[sel], var[sel], s=14, c="C3", label="kept")
    ax.set_xlabel("similarity (mean code co-activation)")
    ax.set_ylabel("variance across codes")
    ax.legend(fontsize=8)
    ax.set_title("similarity vs variance")
    ax = axes[0, 1]
    order = np.argsort(-s)
    ax.bar(np.arange(len(s)), s[order], width=1.0, color=np.where(sel[order], "C3", "0.65"))
    ax.set_xlabel("dimension (sorted by score)")
    ax.set_ylabel(f"score = -{w_sim:.2f} sim + {1 - w_sim:.2f} var")
    ax.set_title(f"{sel.sum()} of {len(s)} dims kept")
    fig.suptitle(title)
    return fig


def cosine_heatmaps(before, after, title: str = "Code cosine similarity before / after TOC",
                    fast: bool = False, size: tuple[float, float] = (5.0, 4.2)) -> Figure:
    """The original's ave_cosine figure: (M, M) cosine similarity of code vectors on all dims
    (left) and on the TOC-kept dims (right), viridis. `fast` uses imshow (for live widgets)
    instead of seaborn's heatmap (nb 03)."""
    if fast:  # manual layout and one shared colour bar: ~3x faster to render than constrained layout
        fig = Figure(figsize=(2 * size[0], size[1]))
        axes = fig.subplots(1, 2)
        fig.subplots_adjust(left=0.06, right=0.88, bottom=0.1, top=0.82, wspace=0.25)
        for ax, mat, name in zip(axes, (before, after), ("Before TOC select", "After TOC select")):
            im = ax.imshow(_np(mat), cmap="viridis", vmin=-1, vmax=1, interpolation="nearest")
            ax.set_title(name, fontsize=9)
            ax.tick_params(labelsize=7)
        fig.colorbar(im, ax=list(axes), shrink=0.8)
        fig.suptitle(title, fontsize=10)
        return fig
    import seaborn as sns

    fig, axes = _new(1, 2, size=size)
    for ax, mat, name in zip(axes[0], (before, after), ("Before TOC select", "After TOC select")):
        m = _np(mat)
        step = max(1, len(m) // 4)
        sns.heatmap(m, cmap="viridis", vmin=-1, vmax=1, ax=ax, cbar_kws=dict(shrink=0.8),
                    xticklabels=step, yticklabels=step, rasterized=True)
        ax.set_title(name)
    fig.suptitle(title)
    return fig


def sweep_plot(df: pd.DataFrame, x: str = "kept", y: str = "accuracy", hue: str = "method",
               chance: float | None = None, title: str = "Probe accuracy vs kept dimensions") -> Figure:
    """Accuracy against the number of kept dimensions, one line per method (nb 03)."""
    fig, axes = _new(size=(5.6, 3.6))
    ax = axes[0, 0]
    for i, (key, g) in enumerate(df.groupby(hue, sort=False)):
        g = g.sort_values(x)
        ax.plot(g[x].to_numpy(), g[y].to_numpy(), marker="o", label=str(key), color=f"C{i}")
    if chance is not None:
        ax.axhline(chance, ls="--", c="0.5", label="chance")
    ax.set_xlabel("kept dimensions per level")
    ax.set_ylabel(f"{y} (%)")
    ax.legend(fontsize=8)
    ax.set_title(title)
    return fig


# ----------------------------------------------------------------------------------- projections
def projection_scatter(xy, points: pd.DataFrame, colour_by: str = "class", jitter: float = 0.02,
                       title: str = "Code vectors of every segment", seed: int = 0, ax=None) -> Figure:
    """Scatter of segments at their code's 2-D position, coloured by a column of `points`
    (class / modality / level) (nb 04). Segments sharing a code are spread by a small seeded
    jitter (a fraction of the plot range) so overlapping points stay visible."""
    if colour_by not in points.columns:
        raise ValueError(f"colour_by={colour_by!r} is not a column of points {list(points.columns)}")
    xy = _np(xy)
    p = xy[points["point"].to_numpy()]  # (P, 2)
    span = np.ptp(xy, axis=0) if len(xy) else np.ones(2)
    span = np.where(span > 0, span, 1.0)
    p = p + np.random.default_rng(seed).normal(size=p.shape) * jitter * span
    fig, axes = (ax.figure, None) if ax is not None else _new(size=(5.6, 4.4))
    ax = ax if ax is not None else axes[0, 0]
    values = points[colour_by].astype(str)
    if colour_by == "class" and "label" in points.columns:  # legend in label order, not alphabetical
        order = list(dict.fromkeys(values.iloc[np.argsort(points["label"].to_numpy(), kind="stable")]))
    else:
        order = sorted(set(values))
    cats = pd.Categorical(values, categories=order)
    cmap = plt.get_cmap("tab10" if len(cats.categories) <= 10 else "tab20")
    for i, cat in enumerate(cats.categories):
        mask = np.asarray(cats == cat)
        ax.scatter(p[mask, 0], p[mask, 1], s=6, alpha=0.6, color=cmap(i % cmap.N), label=cat)
    ax.legend(fontsize=7, markerscale=2, title=colour_by, loc="best", ncol=1 + len(cats.categories) // 12)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=10)
    return fig


# ------------------------------------------------------------------------------------ downstream
def confusion_matrix_plot(cm, class_names: Sequence[str], normalize: bool = True,
                          title: str = "Confusion matrix") -> Figure:
    """Heatmap of a (K, K) confusion matrix, rows = true class (nb 05-08). With `normalize` each
    row is shown as a fraction of its true class."""
    import seaborn as sns

    m = _np(cm).astype(float)
    if m.shape != (len(class_names), len(class_names)):
        raise ValueError(f"cm: expected ({len(class_names)}, {len(class_names)}), got {m.shape}")
    if normalize:
        m = m / np.maximum(m.sum(1, keepdims=True), 1)
    k = len(class_names)
    fig, axes = _new(size=(max(4.0, 0.35 * k + 2), max(3.4, 0.32 * k + 1.6)))
    sns.heatmap(m, cmap="viridis", vmin=0, vmax=1 if normalize else None, square=True, ax=axes[0, 0],
                xticklabels=class_names, yticklabels=class_names, annot=k <= 12, fmt=".2f",
                cbar_kws=dict(shrink=0.8))
    axes[0, 0].set_xlabel("predicted")
    axes[0, 0].set_ylabel("true")
    axes[0, 0].set_title(title)
    return fig


def per_class_bars(accuracy, class_names: Sequence[str], chance: float | None = None,
                   title: str = "Per-class accuracy") -> Figure:
    """Horizontal bars of per-class accuracy in % (nb 05-08)."""
    a = _np(accuracy).astype(float)
    fig, axes = _new(size=(5.2, max(2.6, 0.28 * len(a) + 1)))
    ax = axes[0, 0]
    ax.barh(np.arange(len(a)), a, color="C0")
    ax.set_yticks(np.arange(len(a)), class_names, fontsize=8)
    ax.invert_yaxis()
    if chance is not None:
        ax.axvline(chance, ls="--", c="0.5", label="chance")
        ax.legend(fontsize=8)
    ax.set_xlabel("accuracy (%)")
    ax.set_xlim(0, 100)
    ax.set_title(title)
    return fig


def avvp_timelines(pred, true, class_names: Sequence[str], clip_ids: Sequence[str] | None = None,
                   title: str = "AVVP segments: predicted vs true") -> Figure:
    """One panel per clip: rows = classes active in truth or prediction, 10 one-second cells;
    true events as wide light bars, predicted as narrow dark bars (nb 06, 07).

    pred, true: (n, T, K) {0, 1} arrays (background column excluded or included as a class).
    """
    P, Y = _np(pred).astype(bool), _np(true).astype(bool)
    if P.shape != Y.shape or P.ndim != 3 or P.shape[2] != len(class_names):
        raise ValueError(f"pred/true: expected equal (n, T, {len(class_names)}) arrays, got {P.shape} and {Y.shape}")
    n, T, _ = P.shape
    fig, axes = _new(n, 1, size=(7.0, 1.6))
    for i, ax in enumerate(axes[:, 0]):
        active = np.flatnonzero(P[i].any(0) | Y[i].any(0))
        for r, k in enumerate(active):
            for t in np.flatnonzero(Y[i, :, k]):
                ax.add_patch(mpatches.Rectangle((t, r - 0.4), 1, 0.8, color="C2", alpha=0.35))
            for t in np.flatnonzero(P[i, :, k]):
                ax.add_patch(mpatches.Rectangle((t + 0.1, r - 0.15), 0.8, 0.3, color="C3"))
        ax.set_xlim(0, T)
        ax.set_ylim(-0.6, max(len(active), 1) - 0.4)
        ax.set_yticks(np.arange(len(active)), [class_names[k] for k in active], fontsize=7)
        ax.set_xticks(np.arange(T + 1))
        ax.set_title(clip_ids[i] if clip_ids is not None else f"clip {i}", fontsize=8, loc="left")
    handles = [mpatches.Patch(color="C2", alpha=0.35, label="true"),
               mpatches.Patch(color="C3", label="predicted")]
    axes[0, 0].legend(handles=handles, fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel("second")
    fig.suptitle(title)
    return fig


def results_table(df: pd.DataFrame, title: str = "", float_fmt: str = "{:.1f}") -> Figure:
    """A DataFrame drawn as a table figure (nb 09)."""
    cells = [[float_fmt.format(v) if isinstance(v, (float, np.floating)) and np.isfinite(v) else
              ("-" if isinstance(v, (float, np.floating)) else str(v)) for v in row] for row in df.to_numpy()]
    fig, axes = _new(size=(min(16.0, 1.3 * len(df.columns) + 1), 0.3 * len(df) + 1))
    ax = axes[0, 0]
    ax.axis("off")
    table = ax.table(cellText=cells, colLabels=[str(c) for c in df.columns], loc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    if title:
        ax.set_title(title)
    return fig


def figure_png(fig: Figure, dpi: int = 80) -> bytes:
    """PNG bytes of a figure (used by widgets to update an `ipywidgets.Image`)."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, pil_kwargs={"compress_level": 1})
    return buf.getvalue()


def save_figure(fig: Figure, notebook_name: str, what: str, dpi: int = 110) -> Path:
    """Write `fig` to `<output>/figures/NN-what.png`, NN taken from the notebook name.

    notebook_name: "03_toc" or "03_toc.ipynb" (or "03"); what: short slug ("cosine-heatmaps").
    """
    m = re.match(r"^(\d+)", Path(str(notebook_name)).name)
    if not m:
        raise ValueError(f"notebook_name must start with its number, e.g. '03_toc'; got {notebook_name!r}")
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", what).strip("-")
    if not slug:
        raise ValueError(f"what must contain letters or digits, got {what!r}")
    path = output_dir("figures") / f"{m.group(1)}-{slug}.png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return path


def clip_gallery(images, video, audio, titles: Sequence[str], prompts: Sequence[str] | None = None,
                 title: str = "A few demo clips") -> Figure:
    """One column per clip: a source image (h, w), the video feature grid of one second (channel
    mean, G x G), and the audio features over seconds (T x A, a spectrogram-like view) (nb 00).

    images (n, h, w) or None; video (n, T, G, G, C); audio (n, T, A).
    """
    v, a = _np(video), _np(audio)
    n = len(v)
    rows = 3 if images is not None else 2
    fig, axes = _new(rows, n, size=(2.4, 2.0))
    for i in range(n):
        r = 0
        if images is not None:
            axes[0, i].imshow(_np(images)[i], cmap="gray_r")
            axes[0, i].set_title(titles[i], fontsize=9)
            r = 1
        t_mid = v.shape[1] // 2
        axes[r, i].imshow(v[i, t_mid].mean(-1), cmap="magma")
        axes[r, i].set_title(f"video grid, second {t_mid}", fontsize=8)
        axes[r + 1, i].imshow(a[i].T, aspect="auto", origin="lower", cmap="viridis")
        axes[r + 1, i].set_title("audio features", fontsize=8)
        axes[r + 1, i].set_xlabel("second", fontsize=7)
        if prompts is not None:
            axes[r + 1, i].text(0, -0.45, prompts[i], transform=axes[r + 1, i].transAxes, fontsize=7,
                                wrap=True, va="top")
        for ax in axes[:, i]:
            ax.tick_params(labelsize=6)
    fig.suptitle(title)
    return fig


def grouped_bars(df: pd.DataFrame, x: str, y: str, hue: str, err: str | None = None,
                 title: str = "", ylabel: str | None = None, chance: float | None = None) -> Figure:
    """Grouped bar chart of a tidy DataFrame (e.g. accuracy per direction, one bar per encoder),
    with optional error bars from column `err` (nb 05-09)."""
    xs = list(dict.fromkeys(df[x]))
    hs = list(dict.fromkeys(df[hue]))
    width = 0.8 / max(len(hs), 1)
    fig, axes = _new(size=(max(5.0, 1.2 * len(xs) * max(1, len(hs)) / 2), 3.6))
    ax = axes[0, 0]
    for j, h in enumerate(hs):
        sub = df[df[hue] == h].set_index(x).reindex(xs)
        pos = np.arange(len(xs)) + (j - (len(hs) - 1) / 2) * width
        ax.bar(pos, sub[y].to_numpy(dtype=float), width, label=str(h), color=f"C{j}",
               yerr=None if err is None else sub[err].fillna(0).to_numpy(dtype=float), capsize=3)
    if chance is not None:
        ax.axhline(chance, ls="--", c="0.5", label="chance")
    ax.set_xticks(np.arange(len(xs)), [str(v) for v in xs])
    ax.set_ylabel(ylabel or y)
    ax.legend(fontsize=8)
    ax.set_title(title)
    return fig
