# SPDX-License-Identifier: Apache-2.0
"""Byte-level language-model batches from a local text file/directory or a generated corpus.

Nothing is downloaded. With no path, :func:`generated_corpus` writes English-like text
from a small probabilistic context-free grammar (PCFG): sentences with nested noun
phrases, prepositional phrases and relative clauses over a ~120-word vocabulary, so a
byte-level model first learns spelling, then word order, then agreement-free grammar;
the loss keeps falling for thousands of steps even for a tiny model.

Tokens are bytes (vocabulary 256). The last ``val_fraction`` of the bytes is the
validation split (a contiguous tail, as nanoGPT does). Training batches are random
windows drawn from ``numpy.random.default_rng((key, step))``: a batch is a pure
function of ``(key, step)``, which is what makes resuming from a checkpoint exact
without saving any loader state. A ``key`` is an int (used as NumPy's seed) or a
``jax.random.key`` (its key data seeds NumPy).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from gradkit import _common

VOCAB_SIZE = 256

_DET = """the a every some this that no one""".split()
_ADJ = """
small old green quiet bright heavy strange gentle cold wooden broken happy narrow
ancient silver hungry distant clever empty golden
""".split()
_NOUN = """
river valley stone bird house child teacher garden window mountain letter engine forest
road king farmer lamp boat village cat dog machine song tree bridge city book student
market cloud
""".split()
_NAME = """Alice Bob Carol Dmitri Emma Farid Grace Hiro Ines Jonas""".split()
_VERB_T = """
sees finds carries follows builds paints remembers watches opens crosses loves breaks
writes moves hears
""".split()
_VERB_I = """sleeps sings waits falls shines runs laughs grows rests""".split()
_PREP = """near under behind across inside beyond beside over""".split()
_ADV = """slowly often never quietly again always suddenly""".split()


def _choice(rng: np.random.Generator, words: list[str]) -> str:
    return words[rng.integers(len(words))]


def _noun_phrase(rng: np.random.Generator, depth: int) -> list[str]:
    if rng.random() < 0.2:
        return [_choice(rng, _NAME)]
    words = [_choice(rng, _DET)]
    while rng.random() < 0.35 and len(words) < 3:
        words.append(_choice(rng, _ADJ))
    words.append(_choice(rng, _NOUN))
    if depth < 2:
        r = rng.random()
        if r < 0.2:
            words += [_choice(rng, _PREP), *_noun_phrase(rng, depth + 1)]
        elif r < 0.32:
            words += ["that", *_verb_phrase(rng, depth + 1)]
    return words


def _verb_phrase(rng: np.random.Generator, depth: int) -> list[str]:
    words = [_choice(rng, _ADV)] if rng.random() < 0.15 else []
    if rng.random() < 0.65:
        words += [_choice(rng, _VERB_T), *_noun_phrase(rng, depth + 1)]
    else:
        words.append(_choice(rng, _VERB_I))
        if rng.random() < 0.4:
            words += [_choice(rng, _PREP), *_noun_phrase(rng, depth + 1)]
    return words


def _sentence(rng: np.random.Generator) -> str:
    words = _noun_phrase(rng, 0) + _verb_phrase(rng, 0)
    if rng.random() < 0.2:
        words += ["and", *_noun_phrase(rng, 1), *_verb_phrase(rng, 1)]
    text = " ".join(words)
    return text[0].upper() + text[1:] + "."


def generated_corpus(num_bytes: int = 1_000_000, key: Any = 0) -> bytes:
    """English-like text from a fixed PCFG; deterministic given ``(num_bytes, key)``.

    Sentences are separated by spaces, paragraphs (3-7 sentences) by newlines. Exactly
    ``num_bytes`` bytes of ASCII are returned.
    """
    if num_bytes < 1:
        raise ValueError(f"`num_bytes` must be ≥ 1, got {num_bytes}.")
    rng = np.random.default_rng(_common.numpy_seed(key))
    parts: list[str] = []
    size = 0
    while size < num_bytes:
        paragraph = " ".join(_sentence(rng) for _ in range(rng.integers(3, 8))) + "\n"
        parts.append(paragraph)
        size += len(paragraph)
    return "".join(parts).encode("ascii")[:num_bytes]


def read_text(path: str | os.PathLike) -> bytes:
    """Bytes of a file, or of every regular file under a directory (sorted paths, joined
    with a newline). Hidden files and directories (names starting with ``.``) are skipped.
    """
    path = os.fspath(path)
    if os.path.isfile(path):
        with open(path, "rb") as f:
            return f.read()
    if not os.path.isdir(path):
        raise FileNotFoundError(f"no such file or directory: {path!r}")
    chunks = []
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                with open(os.path.join(root, name), "rb") as f:
                    chunks.append(f.read())
    if not chunks:
        raise ValueError(f"directory {path!r} contains no files.")
    return b"\n".join(chunks)


@dataclasses.dataclass(frozen=True)
class TextData:
    """A byte corpus split into train and validation token arrays (``uint8``)."""

    train: np.ndarray
    val: np.ndarray
    source: str

    @property
    def vocab_size(self) -> int:
        return VOCAB_SIZE


def load_text(
    path: str | os.PathLike | None = None,
    *,
    num_bytes: int = 1_000_000,
    key: Any = 0,
    val_fraction: float = 0.1,
) -> TextData:
    """Loads ``path`` (file or directory) or, if ``None``, the generated corpus.

    Args:
      path: local text file or directory; ``None`` uses :func:`generated_corpus`.
      num_bytes: size of the generated corpus (ignored when ``path`` is given).
      key: key of the generated corpus (an int or a ``jax.random.key``).
      val_fraction: fraction in (0, 1) of the bytes (the tail) used for validation.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"`val_fraction` must be in (0, 1), got {val_fraction}.")
    if path is None:
        raw, source = generated_corpus(num_bytes, key), f"generated(num_bytes={num_bytes})"
    else:
        raw, source = read_text(path), os.fspath(path)
    tokens = np.frombuffer(raw, dtype=np.uint8)
    n_val = max(1, round(len(tokens) * val_fraction))
    if len(tokens) - n_val < 2:
        raise ValueError(f"text from {source} is too short ({len(tokens)} bytes).")
    return TextData(train=tokens[:-n_val], val=tokens[-n_val:], source=source)


def unigram_log_prior(
    tokens: np.ndarray, vocab_size: int = VOCAB_SIZE, pseudo_count: float = 0.01
) -> np.ndarray:
    r"""Centred log unigram frequencies of ``tokens``: an output-bias initialisation.

    .. math::

        b_v = \log p_v - \frac{1}{V}\sum_u \log p_u,\qquad
        p_v = \frac{n_v + c}{N + V c}

    with ``n_v`` the count of token ``v`` among the ``N`` tokens and ``c`` the pseudo-count.
    A model whose logits start at ``b`` predicts the data's unigram distribution from step 0
    (softmax ignores the centring shift), the usual "initialise the final bias to the log
    prior" practice. Unseen tokens get ``log(c / (N + Vc))``, far below every seen one.

    Args:
      tokens: integer token ids (any shape), e.g. ``TextData.train``.
      vocab_size: number of token ids ``V``.
      pseudo_count: ``c > 0`` added to every count.

    Returns:
      ``float64[vocab_size]`` with mean 0.
    """
    if not pseudo_count > 0:
        raise ValueError(f"`pseudo_count` must be > 0, got {pseudo_count}.")
    counts = np.bincount(np.ravel(tokens), minlength=vocab_size).astype(np.float64)
    if counts.size != vocab_size:
        raise ValueError(f"`tokens` has ids >= `vocab_size` ({vocab_size}).")
    log_p = np.log(counts + pseudo_count) - np.log(counts.sum() + vocab_size * pseudo_count)
    return log_p - log_p.mean()


def unigram_entropy(tokens: np.ndarray, vocab_size: int = VOCAB_SIZE) -> float:
    """Entropy (nats/token) of the empirical unigram distribution of ``tokens``."""
    counts = np.bincount(np.ravel(tokens), minlength=vocab_size).astype(np.float64)
    p = counts[counts > 0] / counts.sum()
    return float(-np.sum(p * np.log(p)))


def _windows(tokens: np.ndarray, starts: np.ndarray, seq_len: int) -> dict[str, np.ndarray]:
    idx = starts[:, None] + np.arange(seq_len + 1)[None, :]
    chunk = tokens[idx].astype(np.int32)
    return {"inputs": chunk[:, :-1], "targets": chunk[:, 1:]}


def train_batch(
    tokens: np.ndarray,
    step: int,
    batch_size: int,
    seq_len: int,
    key: Any = 0,
    *,
    shard: int = 0,
    num_shards: int = 1,
) -> dict[str, np.ndarray]:
    """The training batch for ``step``: ``batch_size`` random windows of ``seq_len + 1``
    bytes, as ``{"inputs": int32[B, T], "targets": int32[B, T]}`` (targets shifted by one).
    A pure function of ``(tokens, step, batch_size, seq_len, key)``; ``key`` is an int or a
    ``jax.random.key``.

    For multi-host data parallelism, host ``shard`` of ``num_shards`` gets rows
    ``[shard·B/n, (shard+1)·B/n)`` of that same global batch, so the global batch does not
    depend on the number of hosts.
    """
    if len(tokens) < seq_len + 1:
        raise ValueError(f"need more than `seq_len`={seq_len} tokens, have {len(tokens)}.")
    if batch_size % num_shards or not 0 <= shard < num_shards:
        raise ValueError(
            f"`batch_size` ({batch_size}) must split evenly into `num_shards` ({num_shards}) "
            f"and `shard` ({shard}) must be in [0, num_shards)."
        )
    seed = _common.numpy_seed(key)
    rng = np.random.default_rng((*seed, step) if isinstance(seed, tuple) else (seed, step))
    starts = rng.integers(0, len(tokens) - seq_len, size=batch_size)
    per = batch_size // num_shards
    return _windows(tokens, starts[shard * per : (shard + 1) * per], seq_len)


def eval_batches(
    tokens: np.ndarray, batch_size: int, seq_len: int, num_batches: int
) -> Iterator[dict[str, np.ndarray]]:
    """Deterministic evaluation batches: evenly spaced windows covering ``tokens``.

    Yields ``num_batches`` batches of ``batch_size`` windows (fewer batches if the split
    is short; windows may overlap when the split is shorter than the requested total).
    """
    if len(tokens) < seq_len + 1:
        raise ValueError(f"need more than `seq_len`={seq_len} tokens, have {len(tokens)}.")
    total = batch_size * num_batches
    starts = np.linspace(0, len(tokens) - seq_len - 1, total).astype(np.int64)
    for i in range(num_batches):
        yield _windows(tokens, starts[i * batch_size : (i + 1) * batch_size], seq_len)
