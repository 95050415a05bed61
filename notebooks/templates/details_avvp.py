# %% [markdown]
# ## Do background seconds share codes across modalities?
# A head trained on video codes can call an audio second "background" only if that second falls on a
# code that video uses for background. For each model and level: the codes whose AVVP seconds are
# mostly background in the training modality (its *background codes*), the share of the other
# modality's background seconds that fall on them (high is good) and the share of its event seconds
# that do (low is good). All AVVP clips, `eval()` mode. Digits are aligned by Cross-CPC, but a
# background second carries nothing clip-specific for it to predict; only the same-second terms pull
# the two modalities' background seconds together. With the original's weights (commitment to the
# other modality's code $\beta/2$, text a same-position partner) each modality gave its background
# seconds a code of its own on some pretraining seeds, and a head trained on one modality met codes it
# had never seen (README "Results" and docs/unified-codes.md have the numbers per seed). Text positions
# are words, not seconds: a clip's text takes its digit's code at every position, so as a partner it
# pulled background seconds to that code. The tiny preset therefore drops text as a same-position
# partner and weighs the audio-video commitment $2\beta$ (`ModelConfig.text_partner`,
# `cross_commitment`; `faithful()` restores both).

# %%
from hdcid.downstream import encode_cached

annotations = {"video": "visual", "audio": "audio"}
idx, lab = {}, {}
for mod, ann in annotations.items():
    seg = data[ann].segment_labels()  # (N, T), background = n_classes
    lab[mod] = np.where(seg == data[ann].n_classes, -1, seg)
bg_rows = []
for name, m in models.items():
    for mod, ann in annotations.items():
        idx[mod] = encode_cached(m, data[ann], mod, cache_dir() / "codes").indices  # (N, T, L), eval mode, cached
    for level in range(m.cfg.n_levels):
        for src, tgt in (("video", "audio"), ("audio", "video")):
            r = analysis.background_codes_across(
                idx[src][..., level], lab[src], idx[tgt][..., level], lab[tgt], m.cfg.n_codes
            )
            bg_rows.append(dict(model=name, level=level + 1, direction=f"{src[0]}2{tgt[0]}", **r))
bg_table = pd.DataFrame(bg_rows).set_index(["model", "level", "direction"])
display(bg_table.round(2))

# %%
v2a = bg_table.xs("v2a", level="direction")["bg_on_bg"]
no_toc = results[(results["eval"] == "cross") & (results["toc"] == "none")]
mf1 = no_toc.groupby(["encoder", "direction"])["micro_f1"].mean()  # standard micro F1 without background
display(Markdown(
    "Audio background seconds on a video background code (the v2a head's chance to call them background): "
    + ", ".join(f"{m} level {lv} {v:.0%}" for (m, lv), v in v2a.items())
    + ". Micro F1 without background of the grid above (no TOC, mean over seeds): "
    + ", ".join(f"{e} {d} {v:.1f} %" for (e, d), v in mf1.items()) + "."
))
