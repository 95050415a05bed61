# %% [markdown]
# ## Segment timelines: predicted vs true events

# %%
pred = analysis.task_predictions(TASK, "v2a", models["H-DCID"], data, options=OPTIONS)  # the head of seed SEEDS[0]
K = len(pred.class_names) - 1  # background is the last column
P, Y = pred.segments_pred[..., :K], pred.labels[..., :K] > 0.5
show = np.argsort(-Y.sum((1, 2)))[:4]  # the four clips with the most annotated event-seconds
fig = plots.avvp_timelines(P[show], Y[show], pred.class_names[:K], [pred.ids[i] for i in show],
                           title=f"H-DCID v2a on {pred.eval_set}: predicted vs true (epoch {pred.epoch})")
plots.save_figure(fig, NB, "timelines")
fig

# %% [markdown]
# In each panel a row is an event class: wide light bars are the annotated seconds, narrow dark bars the seconds the head predicted from the other modality's codes.

# %%
f1 = analysis.per_class_segment_f1(P, Y)
fig = plots.per_class_bars(np.nan_to_num(f1), pred.class_names[:K], title="H-DCID v2a: per-class segment F1 (%)", xlabel="segment F1 (%)")
plots.save_figure(fig, NB, "per-class")
fig

# %% [markdown]
# Each bar is the segment-level F1 of one class over all test clips; classes the head never predicts have F1 zero.
