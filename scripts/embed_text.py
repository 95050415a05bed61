"""Embed the demo class prompts per word with the packaged MiniLM -> `data/demo_assets/text_minilm.npz`.

Reads `data/demo_assets/text_prompts.json` ({class: [prompt, ...]}), runs `hdcid.data.text.MiniLMText`
(all-MiniLM-L6-v2, offline; last-layer token vectors, word pieces averaged per word, punctuation-only
words dropped, first 10 words, zero padded) and writes:

    prompts (P,) str, features (P, 10, 384) float16, n_words (P,) int8 (kept words before truncation),
    model str, classes (P,) str (the class each prompt belongs to)

    python scripts/embed_text.py [--prompts ...json] [--out ...npz] [--n-words 10]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from hdcid.data.formats import DataFormatError
from hdcid.data.text import MINILM_NAME, MiniLMText
from hdcid.utils import atomic_path, data_dir


def load_prompt_file(path: str | Path) -> tuple[list[str], list[str]]:
    """`{class: [prompt, ...]}` JSON -> (prompts, classes), unique prompts in file order."""
    path = Path(path)
    table = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(table, dict) or not all(
        isinstance(v, list) and all(isinstance(p, str) for p in v) for v in table.values()
    ):
        raise DataFormatError(f"{path}: expected {{class_name: [prompt, ...]}} with str prompts")
    prompts, classes = [], []
    for cls, plist in table.items():
        for p in plist:
            if p.strip() in prompts:
                raise DataFormatError(f"{path}: prompt {p!r} appears twice (class {cls!r})")
            prompts.append(p.strip())
            classes.append(cls)
    return prompts, classes


def main(argv: list[str] | None = None) -> None:
    assets = data_dir() / "demo_assets"
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", default=str(assets / "text_prompts.json"))
    ap.add_argument("--out", default=str(assets / "text_minilm.npz"))
    ap.add_argument("--n-words", type=int, default=10)
    args = ap.parse_args(argv)
    prompts, classes = load_prompt_file(args.prompts)
    backend = MiniLMText(device="cpu")
    feats = backend.embed_words(prompts, n_words=args.n_words)  # (P, 10, 384)
    n_words = backend.count_words(prompts)  # (P,)
    with atomic_path(args.out) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(
            fh,
            prompts=np.array(prompts),
            features=feats.astype(np.float16),
            n_words=n_words.astype(np.int8),
            model=np.array(MINILM_NAME),
            classes=np.array(classes),
        )
    size = Path(args.out).stat().st_size
    print(
        f"wrote {args.out}: {len(prompts)} prompts, features {feats.shape}, "
        f"words per prompt {n_words.min()}-{n_words.max()}, {size / 1e3:.0f} kB"
    )


if __name__ == "__main__":
    main()
