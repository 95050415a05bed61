"""Interactive explorers: thin ipywidgets shells over pure, unit-tested render functions.

`render_toc` / `render_projection` do all the work and return plain objects; `toc_explorer` /
`umap_explorer` only wire sliders and dropdowns to them. Widgets never train anything and never
call `display()`: the notebook shows the returned widget (notebooks 03 and 04).
"""

from __future__ import annotations

import html
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import ipywidgets as W
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from hdcid import analysis, plots
from hdcid.toc import TOCSettings


# ------------------------------------------------------------------------------------------ TOC
@dataclass
class TOCState:
    """What the TOC explorer shows, from cached codes: the codebooks and both modalities' codes.

    codebooks (L, M, D); q_train (N, T, L, D) / q_test (N', T, L, D): quantized codes of the training
    / test modality (e.g. `Codes.quantized`); labels (N,), (N',). The logic (selection, validation,
    probe) lives in `hdcid.toc` and `hdcid.analysis.cross_modal_probe`; this only holds the view's data.
    """

    codebooks: torch.Tensor
    q_train: np.ndarray
    y_train: np.ndarray
    q_test: np.ndarray
    y_test: np.ndarray
    direction: str = "video -> audio"
    level: int = 0  # which level's cosine heatmap to draw
    all_dims_acc: float = field(init=False, default=float("nan"))

    def __post_init__(self) -> None:
        cb = torch.as_tensor(analysis.as_numpy(self.codebooks), dtype=torch.float64)
        self.codebooks = cb[None] if cb.ndim == 2 else cb
        L, _, D = self.codebooks.shape
        for name in ("q_train", "q_test"):
            arr = analysis.as_numpy(getattr(self, name))
            if arr.ndim != 4 or arr.shape[2:] != (L, D):
                raise ValueError(
                    f"TOCState.{name}: expected (N, T, {L}, {D}) to match codebooks "
                    f"{tuple(self.codebooks.shape)}, got {arr.shape}"
                )
            setattr(self, name, arr)
        self.all_dims_acc = self.probe(None)

    @property
    def n_dims(self) -> int:
        return int(self.codebooks.shape[-1])

    def probe(self, dims: Sequence | None) -> float:
        """`analysis.cross_modal_probe` accuracy (%) on the selected dims per level (None = all)."""
        return analysis.cross_modal_probe(self.q_train, self.y_train, self.q_test, self.y_test, dims)


def render_toc(
    state: TOCState, choose_channel: int, toc_max_num: int, toc_min_num: int, w_sim: float = 0.7, fast: bool = True
) -> tuple[str, Figure | None, float | None]:
    """One slider position -> (readout text, cosine heatmaps before/after, probe accuracy %).

    Invalid combinations (`hdcid.toc.settings_problem`) return (message, None, None) instead of raising.
    """
    from hdcid.toc import TOCSettings, cosine_views, settings_problem

    w_var = 1.0 - float(w_sim)
    problem = settings_problem(state.n_dims, choose_channel, toc_max_num, toc_min_num, w_sim, w_var)
    if problem:
        return f"Invalid setting: {problem}", None, None
    settings = TOCSettings(int(choose_channel), int(toc_max_num), int(toc_min_num), float(w_sim), w_var)
    dims = settings.select(state.codebooks)
    acc = state.probe(dims)
    c, a, b = settings.choose_channel, settings.toc_max_num, settings.toc_min_num
    q = c // (a + b)
    lines = [
        f"{state.direction}: keep {c} of {state.n_dims} dims per level = {q * a} best + {q * b} worst "
        f"(w_sim = {settings.w_sim:.2f}, w_var = {w_var:.2f})"
    ]
    for l, d in enumerate(dims):
        shown = ", ".join(str(int(i)) for i in analysis.as_numpy(d)[:12])
        lines.append(f"level {l + 1} dims: [{shown}{', ...' if len(d) > 12 else ''}]")
    lines.append(f"probe accuracy {acc:.1f} % (all {state.n_dims} dims: {state.all_dims_acc:.1f} %)")
    before, after = cosine_views(state.codebooks[state.level], dims[state.level])
    fig = plots.cosine_heatmaps(
        before,
        after,
        fast=fast,
        size=(3.6, 3.0),
        title=f"Level {state.level + 1} code cosine similarity, {c} dims kept",
    )
    return "\n".join(lines), fig, acc


class TOCExplorer(W.VBox):
    """Sliders for choose_channel, toc_max_num, toc_min_num and w_sim; a readout, the heatmap.

    Attributes for tests and scripting: `choose_channel`, `toc_max_num`, `toc_min_num`, `w_sim`
    (sliders), `readout` (HTML), `image` (PNG Image), `probe_acc` (last accuracy or None),
    `message` (last readout text), `seconds` (last callback duration).
    """

    def __init__(self, state: TOCState, settings: TOCSettings | None = None):
        s = settings or TOCSettings(choose_channel=state.n_dims // 2, toc_max_num=1, toc_min_num=0)
        D = state.n_dims
        self.state = state

        def opts(name: str) -> dict:
            return dict(
                description=name,
                continuous_update=False,
                style={"description_width": "110px"},
                layout=W.Layout(width="460px"),
            )

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
        super().__init__(
            [self.choose_channel, self.toc_max_num, self.toc_min_num, self.w_sim, self.readout, self.image]
        )
        self.add_class("hdcid-toc-explorer")
        self.update()

    @property
    def values(self) -> tuple[int, int, int, float]:
        """The sliders as (choose_channel, toc_max_num, toc_min_num, w_sim)."""
        return (self.choose_channel.value, self.toc_max_num.value, self.toc_min_num.value, float(self.w_sim.value))

    def _on_change(self, _change) -> None:
        self.update()

    def update(self) -> None:
        """Re-render for the current slider values (invalid values show a message)."""
        t0 = time.perf_counter()
        text, fig, acc = render_toc(self.state, *self.values)
        self.message, self.probe_acc = text, acc
        colour = "#b00" if fig is None else "inherit"
        self.readout.value = f"<pre style='color:{colour};margin:0'>{html.escape(text)}</pre>"
        if fig is not None:
            self.image.value = plots.figure_png(fig, dpi=72)
        self.seconds = time.perf_counter() - t0


def toc_explorer(
    codebooks,
    codes_train,
    codes_test,
    labels_train,
    labels_test,
    direction: str = "video -> audio",
    settings: TOCSettings | None = None,
    level: int = 0,
) -> TOCExplorer:
    """Build the TOC explorer from cached codes.

    codebooks (L, M, D) (`model.codebooks()`); codes_train / codes_test: `Codes` objects or
    (N, T, L, D) quantized arrays of the training and test modality; labels (N,), (N',) ints;
    settings: the sliders' first position (default: half the dims, best only, w_sim 0.7).
    """
    q_tr = getattr(codes_train, "quantized", codes_train)
    q_te = getattr(codes_test, "quantized", codes_test)
    state = TOCState(
        codebooks,
        q_tr,
        analysis.as_numpy(labels_train).astype(np.int64),
        q_te,
        analysis.as_numpy(labels_test).astype(np.int64),
        direction,
        level,
    )
    return TOCExplorer(state, settings)


# ----------------------------------------------------------------------------------- projection
def render_projection(
    xy, points: pd.DataFrame, level="all", modality="all", colour_by: str = "class", note: str = ""
) -> Figure:
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
        fig = render_projection(
            self.xy, self.points, self.level.value, self.modality.value, self.colour_by.value, self.note
        )
        self.image.value = plots.figure_png(fig, dpi=72)


def umap_explorer(xy, points: pd.DataFrame, note: str = "UMAP") -> ProjectionExplorer:
    """Build the projection explorer from `analysis.project_codes(...).xy` and `code_points`."""
    return ProjectionExplorer(xy, points, note)
