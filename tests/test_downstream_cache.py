"""encode_cached: reuse, invalidation on weight / codebook changes, train-mode dropout draws.

Also defines the FAKE encoder and the learnable synthetic setup that test_downstream_protocol.py
loads from this file.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from hdcid.data.clipset import ClipSet
from hdcid.downstream.cache import Codes, dataset_fingerprint, encode_cached, model_fingerprint


class FakeEncoder(nn.Module):
    """Linear projection per modality and level, dropout, nearest code in a fixed codebook (L, M, D).

    Video (B,T,G,G,C) is averaged over the grid first. Counts calls to ``encode``.
    """

    def __init__(
        self, levels=1, n_codes=16, dim=8, video_dim=32, audio_dim=128, p=0.1, seed=0, codebook=None, identity=False
    ):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.cfg = SimpleNamespace(
            variant="dcid" if levels == 1 else "hdcid", hidden_dim=dim, n_codes=n_codes, n_levels=levels
        )
        self.video_proj = nn.ModuleList(nn.Linear(video_dim, dim, bias=False) for _ in range(levels))
        self.audio_proj = nn.ModuleList(nn.Linear(audio_dim, dim, bias=False) for _ in range(levels))
        if identity:
            for m in list(self.video_proj) + list(self.audio_proj):
                nn.init.eye_(m.weight)
        self.dropout = nn.Dropout(p)
        cb = torch.randn(levels, n_codes, dim, generator=g) if codebook is None else codebook
        self.register_buffer("embedding", cb.float().clone())
        self.calls = 0

    def codebooks(self):
        return self.embedding

    @torch.no_grad()
    def encode(self, x, modality):
        self.calls += 1
        x = torch.as_tensor(x, dtype=torch.float32)
        if modality == "video":
            x, projs = x.mean(dim=(2, 3)), self.video_proj  # (B, T, C)
        else:
            projs = self.audio_proj
        sem, qs, ids = [], [], []
        for level, proj in enumerate(projs):
            z = self.dropout(proj(x))  # (B, T, D)
            E = self.embedding[level]  # (M, D)
            k = ((z[..., None, :] - E) ** 2).sum(-1).argmin(-1)  # (B, T)
            sem.append(z)
            qs.append(E[k])
            ids.append(k)
        return SimpleNamespace(semantic=sem, quantized=qs, indices=ids)


def learnable_clipset(n, n_classes=4, dim=8, seed=0, name="learn", noise=0.3, grid=2, segment=False):
    """Clips whose video (grid-averaged) and audio features are class prototypes + noise, in the
    SAME space as the codebook of ``learnable_encoder`` (identity projections): codes transfer."""
    g = np.random.default_rng(seed)
    protos = 3.0 * np.eye(n_classes, dim, dtype=np.float32)  # (K, D)
    cls = np.arange(n) % n_classes
    T = 10
    labels = np.zeros((n, T, n_classes + 1), np.float32)
    seg_cls = np.repeat(cls[:, None], T, 1)  # (n, T)
    if segment:  # the first 3 segments are background
        seg_cls[:, :3] = n_classes
    labels[np.arange(n)[:, None], np.arange(T)[None], seg_cls] = 1
    means = np.concatenate([protos, np.zeros((1, dim), np.float32)])[seg_cls]  # (n, T, D)
    audio = (means + noise * g.normal(size=means.shape)).astype(np.float32)
    video = (means[:, :, None, None, :] + noise * g.normal(size=(n, T, grid, grid, dim))).astype(np.float32)
    ids = [f"{name}{i:07d}_0_10" for i in range(n)]
    return ClipSet(
        name=name, ids=ids, classes=[f"c{k}" for k in range(n_classes)], labels=labels, video=video, audio=audio
    )


def learnable_encoder(n_classes=4, dim=8, levels=1, seed=0):
    """FakeEncoder with identity projections; codebook = the class prototypes + the origin + random codes."""
    g = torch.Generator().manual_seed(seed)
    protos = 3.0 * torch.eye(n_classes, dim)
    extra = 0.5 * torch.randn(6, dim, generator=g) + 6.0
    cb = torch.cat([protos, torch.zeros(1, dim), extra])[None].repeat(levels, 1, 1)
    return FakeEncoder(
        levels=levels, n_codes=cb.shape[1], dim=dim, video_dim=dim, audio_dim=dim, codebook=cb, identity=True, p=0.1
    )


@pytest.fixture
def clips():
    return learnable_clipset(30, seed=1, name="ave/train")


def test_codes_shapes_and_values(tmp_path, clips):
    enc = FakeEncoder(levels=2, n_codes=12, dim=8, video_dim=8, audio_dim=8)
    codes = encode_cached(enc, clips, "audio", tmp_path)
    assert isinstance(codes, Codes)
    assert codes.quantized.shape == (30, 10, 2, 8) and codes.quantized.dtype == np.float32
    assert codes.indices.shape == (30, 10, 2) and codes.indices.dtype == np.int64
    assert np.array_equal(codes.labels, clips.labels) and codes.ids == clips.ids
    E = enc.codebooks().numpy()
    # every cached vector is the codebook row of its index, per level
    assert np.array_equal(codes.quantized[:, :, 1], E[1][codes.indices[:, :, 1]])
    assert codes.n_draws == 0 and codes.draw(3) is codes


def test_cache_is_reused_without_calling_the_encoder(tmp_path, clips):
    enc = FakeEncoder(video_dim=8, audio_dim=8)
    a = encode_cached(enc, clips, "video", tmp_path)
    assert enc.calls == 1  # 30 clips, one batch of 256
    b = encode_cached(enc, clips, "video", tmp_path)
    assert enc.calls == 1  # read from disk
    assert np.array_equal(a.quantized, b.quantized) and np.array_equal(a.indices, b.indices)
    assert len(list(tmp_path.glob("*.npz"))) == 1
    encode_cached(enc, clips, "audio", tmp_path)  # another modality -> another entry
    assert enc.calls == 2 and len(list(tmp_path.glob("*.npz"))) == 2


def test_cache_invalidated_by_codebook_buffer_and_weights(tmp_path, clips):
    enc = FakeEncoder(video_dim=8, audio_dim=8)
    fp0 = model_fingerprint(enc)
    encode_cached(enc, clips, "audio", tmp_path)
    with torch.no_grad():
        enc.embedding[0, 0, 0] += 1e-3  # a buffer, not a parameter
    assert model_fingerprint(enc) != fp0
    encode_cached(enc, clips, "audio", tmp_path)
    assert enc.calls == 2
    with torch.no_grad():
        enc.audio_proj[0].weight[0, 0] += 1.0
    c = encode_cached(enc, clips, "audio", tmp_path)
    assert enc.calls == 3 and len(list(tmp_path.glob("*.npz"))) == 3
    # and the new codes really come from the new weights
    with torch.no_grad():
        enc.eval()
        want = enc.encode(clips.audio, "audio").indices[0].numpy()
    assert np.array_equal(c.indices[:, :, 0], want)


def test_cache_key_depends_on_dataset(tmp_path, clips):
    enc = FakeEncoder(video_dim=8, audio_dim=8)
    encode_cached(enc, clips, "audio", tmp_path)
    sub = clips.subset(np.arange(10))
    assert dataset_fingerprint(sub, "audio") != dataset_fingerprint(clips, "audio")
    assert len(encode_cached(enc, sub, "audio", tmp_path)) == 10
    changed = clips.subset(np.arange(30))
    changed.audio = changed.audio.copy()
    changed.audio[0, 0, 0] += 1.0  # same name and ids, different features
    encode_cached(enc, changed, "audio", tmp_path)
    assert enc.calls == 3


def test_train_mode_draws(tmp_path, clips):
    enc = FakeEncoder(video_dim=8, audio_dim=8, p=0.5)
    enc.eval()
    codes = encode_cached(enc, clips, "audio", tmp_path, train_mode=True, n_draws=3, seed=7)
    assert enc.calls == 1 + 3 and not enc.training  # mode restored
    assert codes.n_draws == 3 and codes.draws_quantized.shape == (3, 30, 10, 1, 8)
    eval_codes = encode_cached(enc, clips, "audio", tmp_path)  # eval-only entry is separate
    assert np.array_equal(codes.quantized, eval_codes.quantized)
    d = codes.draws_indices
    assert not np.array_equal(d[0], d[1]) and not np.array_equal(d[0], eval_codes.indices)
    assert np.array_equal(codes.draw(4).indices, d[1]) and np.array_equal(codes.draw(3).indices, d[0])
    # seeded: a fresh cache gives identical draws; reuse does not call the encoder
    again = encode_cached(enc, clips, "audio", tmp_path / "b", train_mode=True, n_draws=3, seed=7)
    assert np.array_equal(again.draws_indices, d)
    calls = enc.calls
    encode_cached(enc, clips, "audio", tmp_path, train_mode=True, n_draws=3, seed=7)
    assert enc.calls == calls
    with pytest.raises(ValueError, match="n_draws must be >= 1, got 0"):
        encode_cached(enc, clips, "audio", tmp_path, train_mode=True, n_draws=0)


def test_corrupt_cache_file_names_the_file(tmp_path, clips):
    enc = FakeEncoder(video_dim=8, audio_dim=8)
    encode_cached(enc, clips, "audio", tmp_path)
    (path,) = tmp_path.glob("*.npz")
    np.savez(path, something=np.zeros(3))
    with pytest.raises(ValueError, match=f"{path.name}: not a valid code cache"):
        encode_cached(enc, clips, "audio", tmp_path)


def test_real_model_codes_and_codebook_untouched(tmp_path, synthetic_clipset):
    from hdcid.config import ModelConfig
    from hdcid.model import CrossModalModel

    torch.manual_seed(0)
    model = CrossModalModel(ModelConfig.tiny("hdcid")).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cs = synthetic_clipset.subset(np.arange(12))
    codes = encode_cached(model, cs, "video", tmp_path, train_mode=True, n_draws=2)
    assert codes.quantized.shape == (12, 10, 2, 64) and codes.draws_indices.shape == (2, 12, 10, 2)
    E = model.codebooks().detach().float().numpy()
    assert np.allclose(codes.quantized[:, :, 0], E[0][codes.indices[:, :, 0]], atol=1e-6)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not model.training
