"""hdcid.notebook: parameter resolution, quick vs full configs, the checkpoint cache key (configs
and corpus content) and load-or-train through the cache. Fast: the small demo corpus, 1-step runs."""

from __future__ import annotations

import math
import os
import shutil

import pytest
import torch

from hdcid import notebook
from hdcid.config import ModelConfig, TrainConfig
from hdcid.data.pretrain import CSV_NAME, PRETRAIN_DIR


@pytest.fixture
def dirs(tmp_path, monkeypatch):
    """Cache, output and demo folders in tmp_path, quick mode off unless a test sets it."""
    for var, sub in (("HDCID_CACHE", "cache"), ("HDCID_OUTPUT", "out"), ("HDCID_DEMO_ROOT", "demo")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    for var in ("HDCID_QUICK", "HDCID_PRESET", "HDCID_EPOCHS", "HDCID_BATCH"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


@pytest.fixture
def corpus(small_demo_root, tmp_path):
    """A private copy of the small corpus's pretraining folder (tests may edit it), mtimes kept."""
    root = tmp_path / "corpus"
    shutil.copytree(small_demo_root / PRETRAIN_DIR, root / PRETRAIN_DIR)
    return root


def _session(root, quick=True) -> notebook.Session:
    return notebook.Session(nb="t", quick=quick, seed=0, data_root=root, device=torch.device("cpu"))


def test_train_configs_quick_vs_full(dirs):
    for variant in ("dcid", "hdcid"):
        m, full = notebook.train_configs(variant, quick=False)
        assert m == ModelConfig.tiny(variant) and full == TrainConfig.tiny(variant)
        assert full.epochs == 8 and full.max_steps_per_epoch is None
        mq, quick = notebook.train_configs(variant, quick=True)
        assert mq == m
        assert (quick.epochs, quick.max_steps_per_epoch, quick.level2_start_epoch) == (2, notebook.QUICK_STEPS, 1)
        assert quick.epochs > quick.level2_start_epoch  # H-DCID's level-2 path runs in quick mode too
    text = notebook.describe_configs(True)
    assert text.splitlines()[1].startswith("hdcid: ModelConfig.tiny - 2 level(s) x 11 codes")
    assert f"max steps/epoch {notebook.QUICK_STEPS}" in text


def test_train_configs_follow_the_preset_environment(dirs, corpus, monkeypatch):
    """HDCID_PRESET=paper: the published sizes and schedule on the demo's input widths; HDCID_EPOCHS
    and HDCID_BATCH override the schedule, level 2 still trains; the cache key changes; one real
    training step of the paper-size H-DCID runs on the demo corpus."""
    tiny_key = notebook.cache_key("hdcid", _session(corpus, quick=False))
    monkeypatch.setenv("HDCID_PRESET", "paper")
    monkeypatch.setenv("HDCID_EPOCHS", "1")
    monkeypatch.setenv("HDCID_BATCH", "2")
    m, t = notebook.train_configs("hdcid", quick=False)
    tiny = ModelConfig.tiny("hdcid")
    assert m == ModelConfig.paper("hdcid", video_dim=tiny.video_dim, word_dim=tiny.word_dim)
    assert (m.n_levels, m.n_codes, m.hidden_dim, m.attention_window) == (2, 400, 256, None)
    assert t == TrainConfig.paper("hdcid", epochs=1, batch_size=2, level2_start_epoch=0)
    assert notebook.describe_configs(False).splitlines()[1].startswith("hdcid: ModelConfig.paper - 2 level(s) x 400")
    assert notebook.cache_key("hdcid", _session(corpus, quick=False)) != tiny_key
    from hdcid.train import Pretrainer

    s = _session(corpus, quick=False)
    trainer = Pretrainer(m, t.replace(max_steps_per_epoch=1), notebook.pretrain_set(s), dirs / "paper", device="cpu")
    result = trainer.fit(progress=False)
    assert len(result.history) == 1 and math.isfinite(float(result.history["total"].iloc[0]))


@pytest.mark.parametrize(
    "var, value", [("HDCID_PRESET", "huge"), ("HDCID_EPOCHS", "0"), ("HDCID_EPOCHS", "two"), ("HDCID_BATCH", "-8")]
)
def test_preset_environment_rejects_bad_values(dirs, monkeypatch, var, value):
    monkeypatch.setenv(var, value)
    with pytest.raises(ValueError, match=f"environment variable {var} must be .*{value!r}"):
        notebook.train_configs("dcid", quick=True)


@pytest.mark.parametrize(
    "env, arg, expected",
    [
        ("1", None, True),
        ("0", None, False),
        ("yes", None, True),
        (None, None, False),
        ("1", False, False),
        ("0", True, True),
    ],
)
def test_start_resolves_quick_from_the_environment(small_demo_root, dirs, monkeypatch, capsys, env, arg, expected):
    if env is not None:
        monkeypatch.setenv("HDCID_QUICK", env)
    s = notebook.start("03_toc", quick=arg, seed=5, data_root=small_demo_root)
    assert s.quick is expected and s.nb == "03_toc" and s.seed == 5 and s.data_root == small_demo_root
    assert s.built is None  # the corpus exists: nothing is built
    out = capsys.readouterr().out
    assert f"notebook 03_toc | device: {s.device} | quick mode: {expected} | seed: 5" in out
    assert f"cache: {dirs / 'cache'}" in out and (dirs / "out" / "figures").is_dir()
    assert notebook.finished(s).startswith("03_toc finished in ") and notebook.finished(s).endswith(
        f"s ({'quick' if expected else 'full'} mode)"
    )


def test_start_seeds_and_defaults_to_demo_root(small_demo_root, dirs, monkeypatch):
    monkeypatch.setenv("HDCID_DEMO_ROOT", str(small_demo_root))
    s = notebook.start("00_tour", seed=7, verbose=False)
    a = torch.rand(3)
    torch.manual_seed(7)
    assert s.data_root == small_demo_root and torch.equal(a, torch.rand(3))


def test_start_builds_a_missing_corpus_only_at_the_default_location(dirs):
    root = dirs / "demo"  # HDCID_DEMO_ROOT (the `dirs` fixture): the default demo location
    assert not notebook.corpus_is_built(root)
    s = notebook.start("00_tour", quick=True, demo_scale=0.01, verbose=False)
    assert notebook.corpus_is_built(root) and s.built is not None and s.built["scale"] == 0.01
    assert notebook.start("00_tour", quick=True, data_root=root, verbose=False).built is None
    typo = dirs / "dmeo"  # any other missing folder is an error, and nothing is written there
    with pytest.raises(FileNotFoundError, match=r"data_root=.*dmeo.*Only the default demo location"):
        notebook.start("00_tour", quick=True, data_root=typo, demo_scale=0.01, verbose=False)
    assert not typo.exists()


def test_cache_key_follows_configs_and_corpus_content(corpus, dirs, monkeypatch):
    key = notebook.checkpoint_dir("dcid", _session(corpus))
    assert key.parent == dirs / "cache" / "pretrain" and key.name.startswith("dcid-")
    assert notebook.checkpoint_dir("dcid", _session(corpus)) == key  # stable for the same corpus
    assert notebook.checkpoint_dir("hdcid", _session(corpus)).name.startswith("hdcid-")
    assert notebook.checkpoint_dir("dcid", _session(corpus, quick=False)) != key  # other schedule
    with monkeypatch.context() as m:
        m.setattr(notebook, "QUICK_STEPS", notebook.QUICK_STEPS + 1)
        assert notebook.checkpoint_dir("dcid", _session(corpus)) != key  # other quick config
    assert notebook.checkpoint_dir("dcid", _session(corpus)) == key

    csv = corpus / PRETRAIN_DIR / CSV_NAME
    stat = csv.stat()
    lines = csv.read_text().splitlines(keepends=True)
    csv.write_text("".join(lines[:1] + lines[2:] + lines[1:2]))  # same bytes, other row order
    os.utime(csv, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert csv.stat().st_size == stat.st_size
    assert notebook.checkpoint_dir("dcid", _session(corpus)) != key  # CSV content, not just its size


def test_cache_key_follows_the_feature_zips(corpus, dirs):
    key = notebook.cache_key("dcid", _session(corpus))
    first = sorted((corpus / PRETRAIN_DIR / "feature" / "audio" / "zip").iterdir())[0]
    st = first.stat()
    os.utime(first, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # a rewritten feature file
    key2 = notebook.cache_key("dcid", _session(corpus))
    assert key2 != key
    first.unlink()  # a missing clip
    assert notebook.cache_key("dcid", _session(corpus)) not in (key, key2)


def test_pretrained_trains_once_then_loads(corpus, dirs, capsys):
    s = _session(corpus)
    assert not notebook.is_cached("hdcid", s)
    rows = []
    first = notebook.pretrained("hdcid", s, callback=rows.append, progress=False)
    n_clips = len(notebook.pretrain_set(s))
    tcfg = notebook.train_configs("hdcid", quick=True)[1]
    steps = 2 * min(notebook.QUICK_STEPS, math.ceil(n_clips / tcfg.batch_size))  # small corpus: short epochs
    assert notebook.is_cached("hdcid", s) and len(rows) == steps
    assert [p.name for p in first.checkpoints] == ["epoch-0.pt", "epoch-1.pt"]
    assert first.checkpoints[0].parent == notebook.checkpoint_dir("hdcid", s)
    again = notebook.pretrained("hdcid", _session(corpus), callback=rows.append)
    out = capsys.readouterr().out
    assert "hdcid: pretraining 2 epochs" in out and "hdcid: loading the cached checkpoint" in out
    assert len(rows) == steps  # loading trains nothing
    assert again.history.equals(first.history)
    a, b = first.model.state_dict(), again.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
