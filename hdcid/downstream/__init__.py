"""Cross-modal downstream evaluation: cached codes, heads, losses, metrics, tasks and results.

Main entry points: ``encode_cached`` (codes of a ClipSet, cached on disk), ``run_task`` (one task and
direction under the "honest" or "original" protocol -> tidy DataFrame; how the heads train is one
``TaskOptions``), ``run_grid`` and ``write_results`` (the results table, CSV + Markdown).
"""

from hdcid.downstream.cache import Codes, encode_cached
from hdcid.downstream.fitting import TaskOptions, fit_task, run_task
from hdcid.downstream.heads import SegmentHead, VideoLevelHead
from hdcid.downstream.losses import ExpLogLoss, SegmentLoss, segment_loss, video_loss
from hdcid.downstream.protocol import PROTOCOLS, FitConfig, choose_epoch, fit_head
from hdcid.downstream.tasks import (
    DIRECTIONS,
    TASKS,
    build_splits,
    default_toc_grid,
    load_task_data,
    paper_toc,
)

__all__ = [
    "Codes",
    "encode_cached",
    "SegmentHead",
    "VideoLevelHead",
    "ExpLogLoss",
    "SegmentLoss",
    "segment_loss",
    "video_loss",
    "PROTOCOLS",
    "FitConfig",
    "choose_epoch",
    "fit_head",
    "markdown_table",
    "run_grid",
    "run_paper_grid",
    "summarize",
    "write_results",
    "DIRECTIONS",
    "TASKS",
    "build_splits",
    "default_toc_grid",
    "fit_task",
    "load_task_data",
    "paper_toc",
    "run_task",
    "TaskOptions",
]

_RESULTS = ("markdown_table", "run_grid", "run_paper_grid", "summarize", "write_results")


def __getattr__(name):  # lazy, so `python -m hdcid.downstream.results` runs cleanly
    if name in _RESULTS:
        from hdcid.downstream import results

        return getattr(results, name)
    raise AttributeError(f"module 'hdcid.downstream' has no attribute {name!r}")
