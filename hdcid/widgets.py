"""Interactive explorers: thin ipywidgets shells over pure, unit-tested render functions.

`render_toc` / `render_projection` do all the work and return plain objects; `toc_explorer` /
`umap_explorer` only wire sliders and dropdowns to them. Widgets never train anything and never
call `display()`: the notebook shows the returned widget (notebooks 03 and 04).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

import ipywidgets as W
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from hdcid import analysis, plots


# ------------------------------------------------------------------------------------------ TOC
@dataclass(frozen=True)
class TOCSliderSettings:
    """One position of the TOC explorer's sliders (w_var is always 1 - w_sim)."""

    choose_channel: int = 32
    toc_max_num: int = 1
    toc_min_num: int = 0
    w_sim: float = 0.7

    @property
    def w_var(self) -> float:
        return 1.0 - self.w_sim


@dataclass
class TOCState:
    """Everything the TOC explorer needs, precomputed once from cached codes.

    codebooks (L, M, D); pooled_train (N, L, D) / pooled_test (N', L, D): per-clip mean over
    segments of the quantized codes of the training / test modality; labels (N,), (N',).
    """

    codebooks: torch.Tensor
    pooled_train: np.ndarray
    y_train: np.ndarray
    pooled_test: np.ndarray
    y_test: np.ndarray
    direction: str = "video -> audio"
    level: int = 0  # which level's cosine heatmap to draw
    all_dims_acc: float = field(init=False, default=float("nan"))

    def __post_init__(self) -> None:
        cb = torch.as_tensor(analysis.as_numpy(self.codebooks), dtype=torch.float64)
        self.codebooks = cb[None] if cb.ndim == 2 else cb
        L, _, D = self.codebooks.shape
        for name in ("pooled_train", "pooled_test"):
            arr = getattr(self, name)
            if arr.ndim != 3 or arr.shape[1:] != (L, D):
                raise ValueError(f"TOCState.{name}: expected (N, {L}, {D}) to match codebooks "
                                 f"{tuple(self.codebooks.shape)}, got {arr.shape}")
        self.all_dims_acc = self.probe(None)

    @classmethod
    def from_codes(cls, codebooks, q_train, y_train, q_test, y_test, direction: str = "video -> audio",
                   level: int = 0) -> "TOCState":
        """q_train (N, T, L, D), q_test (N', T, L, D) quantized codes (e.g. `Codes.quantized`)."""
        return cls(codebooks, analysis.pool_levels(q_train, "q_train"), analysis.as_numpy(y_train).astype(np.int64),
                   analysis.pool_levels(q_test, "q_test"),
                   analysis.as_numpy(y_test).astype(np.int64), direction, level)

    @property
    def n_dims(self) -> int:
        return int(self.codebooks.shape[-1])

    def probe(self, dims: Sequence | None) -> float:
        """Centroid-probe accuracy (%) on the selected dims per level (None = all dims)."""
        if dims is None:
            xtr, xte = self.pooled_train.reshape(len(self.pooled_train), -1), self.pooled_test.reshape(len(self.pooled_test), -1)
        else:
            xtr = np.concatenate([self.pooled_train[:, l, analysis.as_numpy(d)] for l, d in enumerate(dims)], 1)
            xte = np.concatenate([self.pooled_test[:, l, analysis.as_numpy(d)] for l, d in enumerate(dims)], 1)
        return analysis.centroid_probe(xtr, self.y_train, xte, self.y_test)[0]


def toc_settings_problem(settings, n_dims: int) -> str | None:
    """Why a slider combination is invalid (a message for the user), or None if it is valid."""
    c, a, b = int(settings.choose_channel), int(settings.toc_max_num), int(settings.toc_min_num)
    if a < 0 or b < 0:
        return f"toc_max_num and toc_min_num must be >= 0 (got {a}, {b})."
    if a + b == 0:
        return "toc_max_num + toc_min_num is 0: nothing would be kept. Raise one of them."
    if not 0 < c <= n_dims:
        return f"choose_channel must lie in 1..{n_dims} (the code width), got {c}."
    if c % (a + b):
        lo, hi = c - c % (a + b), c - c % (a + b) + (a + b)
        near = [v for v in (lo, hi) if 0 < v <= n_dims]
        return (f"choose_channel = {c} is not divisible by toc_max_num + toc_min_num = {a + b}; "
                f"the original code would crash here. Nearest valid budgets: {near}.")
    if not 0.0 <= float(settings.w_sim) <= 1.0:
        return f"w_sim must lie in [0, 1], got {settings.w_sim}."
    return None


def select_dims(state: TOCState, settings) -> list[torch.Tensor]:
    """TOC selection per level (hdcid.toc.toc_select) for valid `settings`."""
    from hdcid.toc import toc_select

    c, a, b = int(settings.choose_channel), int(settings.toc_max_num), int(settings.toc_min_num)
    w = float(settings.w_sim)
    return [toc_select(E, c, a, b, w_sim=w, w_var=1.0 - w) for E in state.codebooks]


def render_toc(state: TOCState, settings, fast: bool = True) -> tuple[str, Figure | None, float | None]:
    """One slider position -> (readout text, cosine heatmaps before/after, probe accuracy %).

    Invalid combinations return (message, None, None) instead of raising.
    """
    from hdcid.toc import cosine_views

    problem = toc_settings_problem(settings, state.n_dims)
    if problem:
        return f"Invalid setting: {problem}", None, None
    dims = select_dims(state, settings)
    acc = state.probe(dims)
    c, a, b = int(settings.choose_channel), int(settings.toc_max_num), int(settings.toc_min_num)
    q = c // (a + b)
    lines = [f"{state.direction}: keep {c} of {state.n_dims} dims per level = {q * a} best + {q * b} worst "
             f"(w_sim = {float(settings.w_sim):.2f}, w_var = {1 - float(settings.w_sim):.2f})"]
    for l, d in enumerate(dims):
        shown = ", ".join(str(int(i)) for i in analysis.as_numpy(d)[:12])
        lines.append(f"level {l + 1} dims: [{shown}{', ...' if len(d) > 12 else ''}]")
    lines.append(f"probe accuracy {acc:.1f} % (all {state.n_dims} dims: {state.all_dims_acc:.1f} %)")
    before, after = cosine_views(state.codebooks[state.level], dims[state.level])
    fig = plots.cosine_heatmaps(before, after, fast=fast, size=(3.6, 3.0),
                                title=f"Level {state.level + 1} code cosine similarity, {c} dims kept")
    return "\n".join(lines), fig, acc


class TOCExplorer(W.VBox):
    """Sliders for choose_channel, toc_max_num, toc_min_num and w_sim; a readout, the heatmap.

    Attributes for tests and scripting: `choose_channel`, `toc_max_num`, `toc_min_num`, `w_sim`
    (sliders), `readout` (HTML), `image` (PNG Image), `probe_acc` (last accuracy or None),
    `message` (last readout text), `seconds` (last callback duration).
    """

    def __init__(self, state: TOCState, settings: TOCSliderSettings | None = None):
        s = settings or TOCSliderSettings(choose_channel=state.n_dims // 2)
        D = state.n_dims
        self.state = state
        def opts(name: str) -> dict:
            return dict(description=name, continuous_update=False, style={"description_width": "110px"},
                        layout=W.Layout(width="460px"))

        self.choose_channel = W.IntSlider(s.choose_channel, min=1, max=D, **opts("choose_channel"))
        self.toc_max_num = W.IntSlider(s.toc_max_num, min=0, max=4, **opts("toc_max_num"))
        self.toc_min_num = W.IntSlider(s.toc_min_num, min=0, max=4, **opts("toc_min_num"))
        self.w_sim = W.FloatSlider(s.w_sim, min=0.0, max=1.0, step=0.05, **opts("w_sim (1 - w_var)"))
        self.readout = W.HTML(layout=W.Layout(width="760px"))
        self.readout.add_class("hdcid-toc-readout")
        self.image = W.Image(format="png", layout=W.Layout(width="640px"))
        self.image.add_class("hdcid-toc-image")
        self.probe_acc: float | None = None
        self.message = ""
        self.seconds = 0.0
        for w in (self.choose_channel, self.toc_max_num, self.toc_min_num, self.w_sim):
            w.observe(self._on_change, names="value")
        super().__init__([self.choose_channel, self.toc_max_num, self.toc_min_num, self.w_sim,
                          self.readout, self.image])
        self.add_class("hdcid-toc-explorer")
        self.update()

    @property
    def settings(self) -> TOCSliderSettings:
        return TOCSliderSettings(self.choose_channel.value, self.toc_max_num.value,
                                 self.toc_min_num.value, float(self.w_sim.value))

    def _on_change(self, _change) -> None:
        self.update()

    def update(self) -> None:
        """Re-render for the current slider values (invalid values show a message)."""
        t0 = time.perf_counter()
        text, fig, acc = render_toc(self.state, self.settings)
        self.message, self.probe_acc = text, acc
        colour = "#b00" if fig is None else "inherit"
        self.readout.value = f"<pre style='color:{colour};margin:0'>{_escape(text)}</pre>"
        if fig is not None:
            self.image.value = plots.figure_png(fig, dpi=72)
        self.seconds = time.perf_counter() - t0


def toc_explorer(codebooks, codes_train, codes_test, labels_train, labels_test,
                 direction: str = "video -> audio", settings: TOCSliderSettings | None = None,
                 level: int = 0) -> TOCExplorer:
    """Build the TOC explorer from cached codes.

    codebooks (L, M, D) (`model.codebooks()`); codes_train / codes_test: `Codes` objects or
    (N, T, L, D) quantized arrays of the training and test modality; labels (N,), (N',) ints.
    """
    q_tr = getattr(codes_train, "quantized", codes_train)
    q_te = getattr(codes_test, "quantized", codes_test)
    state = TOCState.from_codes(codebooks, q_tr, labels_train, q_te, labels_test, direction, level)
    return TOCExplorer(state, settings)


# ----------------------------------------------------------------------------------- projection
def render_projection(xy, points: pd.DataFrame, level="all", modality="all", colour_by: str = "class",
                      note: str = "") -> Figure:
    """Scatter of the segments' code vectors filtered by level / modality (nb 04).

    xy (U, 2) projection of `analysis.code_points` vectors; points its per-segment table.
    """
    sel = points
    if level != "all":
        sel = sel[sel["level"] == int(level)]
    if modality != "all":
        sel = sel[sel["modality"] == modality]
    if sel.empty:
        fig = Figure(figsize=(5.6, 4.4))
        fig.text(0.5, 0.5, f"no segments for level={level}, modality={modality}", ha="center")
        return fig
    title = f"{note}: level {level}, modality {modality}, coloured by {colour_by}"
    return plots.projection_scatter(xy, sel, colour_by=colour_by, title=title)


class ProjectionExplorer(W.VBox):
    """Dropdowns `level`, `modality`, `colour_by` over `render_projection`; `image` shows it."""

    def __init__(self, xy, points: pd.DataFrame, note: str = ""):
        self.xy, self.points, self.note = xy, points, note
        levels = ["all"] + [str(v) for v in sorted(points["level"].unique())]
        mods = ["all"] + list(dict.fromkeys(points["modality"]))
        self.level = W.Dropdown(options=levels, value="all", description="level")
        self.modality = W.Dropdown(options=mods, value="all", description="modality")
        self.colour_by = W.Dropdown(options=["class", "modality", "level"], value="class", description="colour by")
        self.image = W.Image(format="png", layout=W.Layout(width="560px"))
        for w in (self.level, self.modality, self.colour_by):
            w.observe(lambda _c: self.update(), names="value")
        super().__init__([W.HBox([self.level, self.modality, self.colour_by]), self.image])
        self.update()

    def update(self) -> None:
        fig = render_projection(self.xy, self.points, self.level.value, self.modality.value,
                                self.colour_by.value, self.note)
        self.image.value = plots.figure_png(fig, dpi=72)


def umap_explorer(xy, points: pd.DataFrame, note: str = "UMAP") -> ProjectionExplorer:
    """Build the projection explorer from `analysis.project_codes(...).xy` and `code_points`."""
    return ProjectionExplorer(xy, points, note)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
