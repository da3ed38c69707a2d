# SPDX-License-Identifier: Apache-2.0
"""Data of the reference LM: bytes of a local text file or of the generated PCFG corpus.

Batches are a pure function of ``(seed, step)`` (:func:`gradkit.data.text.train_batch`), so
a resumed run sees exactly the batches it would have seen, and each process of a
multi-process run loads only its own rows of the global batch.
"""

from __future__ import annotations

import jax
import numpy as np
from ml_collections import ConfigDict as Config

from gradkit.data import text


def load_dataset(config: Config) -> text.TextData:
    """Train/validation byte arrays of ``config`` (``data_path`` or the generated corpus)."""
    return text.load_text(config.data_path, num_bytes=config.corpus_bytes, key=config.seed,
                          val_fraction=config.val_fraction)


def train_batch(data: text.TextData, step: int, config: Config) -> dict[str, np.ndarray]:
    """This process's rows of the global training batch of ``step``."""
    return text.train_batch(data.train, step, config.batch_size, config.seq_len, config.seed,
                            shard=jax.process_index(), num_shards=jax.process_count())


def eval_batches(data: text.TextData, config: Config) -> list[dict[str, np.ndarray]]:
    """The fixed validation batches (``eval_batches`` of them, the whole global batch)."""
    return list(text.eval_batches(data.val, config.batch_size, config.seq_len,
                                  config.eval_batches))
