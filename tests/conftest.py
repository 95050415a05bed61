"""Shared pytest fixtures.

small_demo_root:   a tiny AV-Digits build (scale 0.05, seed 0) in a session tmp folder, ~1-2 s.
                   Read it with the hdcid.data readers (e.g. read_ave(small_demo_root, "train")).
synthetic_clipset: a Gaussian ClipSet (60 clips, 10 classes, every class 6 times):
                   video (60,10,7,7,32), audio (60,10,128), text (60,10,384), labels (60,10,11).
hash_text:         a stand-in TextBackend (dim 384) for read_pretrain when no MiniLM is wanted.
synthetic_root:    every original format from Gaussian prototypes (scale 0.02), ~0.2 s.
"""

from __future__ import annotations

import pytest
import torch

SMALL_SCALE = 0.05


@pytest.fixture(scope="session")
def small_demo_root(tmp_path_factory):
    from hdcid.demo.build import build_demo

    root = tmp_path_factory.mktemp("av_digits_small")
    build_demo(root, seed=0, scale=SMALL_SCALE)
    return root


@pytest.fixture
def synthetic_clipset():
    from hdcid.demo.synthetic import gaussian_clipset

    return gaussian_clipset(n=60, n_classes=10, seed=0, video_dim=32, audio_dim=128, word_dim=384)


@pytest.fixture
def hash_text():
    from hdcid.demo.synthetic import HashText

    return HashText(dim=384)


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory):
    """Every original format written from Gaussian prototypes (write_synthetic_corpus, scale 0.02,
    seed 0; ~0.2 s): AVE 20 clips (14/3/3), AVVP 20, UCF 20 + VGGSound 20, pretraining 40."""
    from hdcid.demo.synthetic import write_synthetic_corpus

    root = tmp_path_factory.mktemp("synthetic_corpus")
    write_synthetic_corpus(root, seed=0, scale=0.02)
    return root


@pytest.fixture(autouse=True)
def _one_thread():
    """2 shared CPU cores: intra-op threads oversubscribe and make steps 10x slower; use one."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
