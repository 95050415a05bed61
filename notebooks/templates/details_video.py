# %% [markdown]
# ## Confusion matrix and per-class accuracy

# %%
# the grid's H-DCID v2a head without TOC of seed SEEDS[0] (fit=: reused, not trained again)
pred = analysis.task_predictions(TASK, "v2a", models["H-DCID"], data, options=OPTIONS, fit=FITS["H-DCID", TASK, "v2a", "none"])
K = len(pred.class_names)
cm = analysis.confusion_matrix(pred.y_true, pred.y_pred, K)
fig = plots.confusion_matrix_plot(cm, pred.class_names, title=f"H-DCID v2a on {pred.eval_set} (epoch {pred.epoch})")
plots.save_figure(fig, NB, "confusion")
print(f"top-1 from the confusion matrix: {100 * np.trace(cm) / cm.sum():.1f} %")
fig

# %% [markdown]
# Rows are true classes and columns predicted classes, normalised per row; a strong diagonal means the head trained on video codes recognises the audio codes of the same class.

# %%
fig = plots.per_class_bars(np.nan_to_num(analysis.per_class_accuracy(cm)), pred.class_names,
                           chance=100 / K, title="H-DCID v2a: per-class accuracy (%)")
plots.save_figure(fig, NB, "per-class")
fig

# %% [markdown]
# Each bar is the share of test clips of that class classified correctly; the dashed line is chance.
