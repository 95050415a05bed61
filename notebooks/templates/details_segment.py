# %% [markdown]
# ## Segment timelines: predicted vs true events

# %%
# the grid's H-DCID v2a head without TOC of seed SEEDS[0] (fit=: reused, not trained again)
pred = analysis.task_predictions(TASK, "v2a", models["H-DCID"], data, options=OPTIONS, fit=FITS["H-DCID", TASK, "v2a", "none"])
K = len(pred.class_names) - 1  # background is the last column
P, Y = pred.segments_pred[..., :K], pred.labels[..., :K] > 0.5
show = np.argsort(-Y.sum((1, 2)))[:4]  # the four clips with the most annotated event-seconds
fig = plots.avvp_timelines(P[show], Y[show], pred.class_names[:K], [pred.ids[i] for i in show],
                           title=f"H-DCID v2a on {pred.eval_set}: predicted vs true (epoch {pred.epoch})")
plots.save_figure(fig, NB, "timelines")
fig

# %% [markdown]
# In each panel a row is an event class: wide light bars are the annotated seconds, narrow dark bars the seconds the head predicted from the other modality's codes.
#
# The head sees one second's code at a time, so it can find the event seconds only if background
# seconds get other codes than event seconds, in both modalities. With the original's full
# self-attention (no positional encoding) every second's semantic feature is computed from the whole
# clip, and on the demo corpus the background seconds of a clip took the code of its event: the
# heads then predicted an event in almost every second (measured by `benchmarks/unified_codes.py`,
# README "Results"). The tiny preset therefore lets each second attend only to itself and its neighbours (`ModelConfig.attention_window=1`; `paper()` and
# `faithful()` keep full attention, docs/method.md §6). The lines below are computed from this head:

# %%
from hdcid.downstream.metrics import micro_prf

ev_pred, ev_true = P.any(-1), Y.any(-1)  # (N, T): a second with a predicted / an annotated event
micro = micro_prf(P, Y, exclude_background=False)  # P, Y hold the K event columns only
display(Markdown(
    f"On {pred.eval_set} ({len(P)} clips) this head predicts an event in {ev_pred.mean():.0%} of the seconds; "
    f"{ev_true.mean():.0%} are annotated with one. Segment micro precision {micro['micro_precision']:.1f} %, recall "
    f"{micro['micro_recall']:.1f} %, F1 {micro['micro_f1']:.1f} % (background excluded, one head seed)."
))

# %%
f1 = analysis.per_class_segment_f1(P, Y)
fig = plots.per_class_bars(np.nan_to_num(f1), pred.class_names[:K], title="H-DCID v2a: per-class segment F1 (%)", xlabel="segment F1 (%)")
plots.save_figure(fig, NB, "per-class")
fig

# %% [markdown]
# Each bar is the segment-level F1 of one class over all test clips; classes the head never predicts have F1 zero.
