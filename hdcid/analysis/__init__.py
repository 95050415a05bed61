"""Pure statistics of discrete codes: usage, agreement, level structure, probes, projections.

Everything here takes plain arrays (numpy or torch; converted with `as_numpy`) and returns
numbers, arrays or DataFrames. Nothing trains or mutates a model. Notebooks 02 (usage), 03 (probe
and TOC sweep) and 04 (levels, projections) show these quantities; `hdcid.plots` draws them.

One concept per module, every public name re-exported here (`from hdcid import analysis`):

- `usage`       how often each code is chosen: counts, perplexity, dead codes, ownership, over training
- `agreement`   how codes relate: cross-modal agreement, level co-occurrence, entropy, MI, purity
- `unified`     audio-video agreement (same second, same clip), usage and ownership, per-digit top codes
- `probes`      pooled clip features, the centroid / cross-modal probe, TOC terms and sweep
- `projection`  code points and their cached 2-D UMAP / PCA projection
- `runs`        a pretrained model and its run: loss terms, parameter counts, codes per modality
- `predictions` one downstream head's predictions, confusion matrix, per-class metrics

Shapes: `N` clips, `T` segments, `L` levels, `M` codes, `D` code width, `Mo` modalities.
"""

from __future__ import annotations

from hdcid.analysis._arrays import as_numpy
from hdcid.analysis.agreement import (
    agreement_matrix,
    code_purity,
    conditional_entropy,
    level_cooccurrence,
    level_information,
    mutual_information,
)
from hdcid.analysis.predictions import (
    TaskPredictions,
    confusion_matrix,
    per_class_accuracy,
    per_class_segment_f1,
    task_predictions,
)
from hdcid.analysis.probes import centroid_probe, cross_modal_probe, pool_codes, pool_levels, toc_sweep, toc_terms
from hdcid.analysis.projection import Projection, code_points, project_codes
from hdcid.analysis.runs import encode_modalities, loss_terms, model_sizes
from hdcid.analysis.unified import (
    agreement_claims,
    agreement_over_epochs,
    background_codes_across,
    check_claims,
    clip_agreement,
    clip_modes,
    code_digit_readout,
    code_shares,
    digit_top_codes,
    heldout_agreement,
    modality_usage,
    same_second_agreement,
    sharing_verdict,
    trend_verdict,
    unified_summary,
)
from hdcid.analysis.usage import (
    code_ownership,
    dead_codes,
    ownership_summary,
    perplexity,
    usage_counts,
    usage_matrix,
    usage_over_training,
    usage_summary,
)

__all__ = [
    "as_numpy",
    # usage
    "usage_counts",
    "usage_matrix",
    "perplexity",
    "dead_codes",
    "code_ownership",
    "ownership_summary",
    "usage_summary",
    "usage_over_training",
    # agreement and levels
    "agreement_matrix",
    "level_cooccurrence",
    "conditional_entropy",
    "mutual_information",
    "code_purity",
    "level_information",
    # unified codes: audio-video agreement, usage per modality, per-digit top codes
    "same_second_agreement",
    "clip_modes",
    "clip_agreement",
    "code_shares",
    "modality_usage",
    "digit_top_codes",
    "unified_summary",
    "heldout_agreement",
    "agreement_over_epochs",
    "sharing_verdict",
    "trend_verdict",
    "agreement_claims",
    "check_claims",
    "code_digit_readout",
    "background_codes_across",
    # probes and TOC
    "pool_codes",
    "pool_levels",
    "centroid_probe",
    "cross_modal_probe",
    "toc_terms",
    "toc_sweep",
    # projections
    "code_points",
    "Projection",
    "project_codes",
    # runs
    "loss_terms",
    "model_sizes",
    "encode_modalities",
    # downstream predictions
    "confusion_matrix",
    "per_class_accuracy",
    "TaskPredictions",
    "task_predictions",
    "per_class_segment_f1",
]


def __dir__() -> list[str]:
    return sorted(__all__)
