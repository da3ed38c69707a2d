# SPDX-License-Identifier: Apache-2.0
"""Tests for gradkit.data.text: generated corpus, local files, deterministic batches."""

import jax
import numpy as np
import pytest

from gradkit.data import text


def test_generated_corpus_is_deterministic_ascii_and_sized():
    a = text.generated_corpus(5000, key=3)
    assert a == text.generated_corpus(5000, key=3)
    assert a != text.generated_corpus(5000, key=4)
    assert len(a) == 5000
    decoded = a.decode("ascii")
    assert decoded[0].isupper() and "." in decoded and "\n" in decoded
    # A language, not noise: few distinct words, and sentences end with a period.
    words = decoded.replace(".", " ").split()
    assert len(set(words)) < 200 < len(words)


def test_load_text_reads_a_local_file(tmp_path):
    content = ("hello gradkit, " * 200).encode() + bytes(range(256))
    path = tmp_path / "corpus.txt"
    path.write_bytes(content)
    data = text.load_text(path, val_fraction=0.25)
    joined = np.concatenate([data.train, data.val]).tobytes()
    assert joined == content
    assert len(data.val) == round(0.25 * len(content))
    assert data.train.dtype == np.uint8 and data.vocab_size == 256
    assert data.source == str(path)


def test_load_text_reads_a_directory_in_sorted_order(tmp_path):
    (tmp_path / "b.txt").write_bytes(b"second file " * 10)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.txt").write_bytes(b"third file " * 10)
    (tmp_path / "a.txt").write_bytes(b"first file " * 10)
    (tmp_path / ".hidden").write_bytes(b"skipped")
    raw = text.read_text(tmp_path)
    assert raw == b"\n".join([b"first file " * 10, b"second file " * 10, b"third file " * 10])


def test_load_text_without_path_uses_generated_corpus():
    data = text.load_text(None, num_bytes=4000, key=1, val_fraction=0.1)
    full = np.concatenate([data.train, data.val]).tobytes()
    assert full == text.generated_corpus(4000, key=1)
    assert len(data.val) == 400


def test_missing_path_and_bad_fraction_raise(tmp_path):
    with pytest.raises(FileNotFoundError):
        text.load_text(tmp_path / "nope.txt")
    with pytest.raises(ValueError, match="val_fraction"):
        text.load_text(None, num_bytes=1000, val_fraction=1.0)
    with pytest.raises(ValueError, match="no files"):
        text.read_text(tmp_path)


def test_train_batches_are_a_pure_function_of_key_and_step():
    tokens = np.frombuffer(text.generated_corpus(10_000, key=0), np.uint8)
    b1 = text.train_batch(tokens, step=7, batch_size=4, seq_len=16, key=0)
    b2 = text.train_batch(tokens, step=7, batch_size=4, seq_len=16, key=0)
    np.testing.assert_array_equal(b1["inputs"], b2["inputs"])
    other_step = text.train_batch(tokens, step=8, batch_size=4, seq_len=16, key=0)
    other_key = text.train_batch(tokens, step=7, batch_size=4, seq_len=16, key=1)
    assert not np.array_equal(b1["inputs"], other_step["inputs"])
    assert not np.array_equal(b1["inputs"], other_key["inputs"])
    assert b1["inputs"].shape == b1["targets"].shape == (4, 16)
    assert b1["inputs"].dtype == np.int32
    np.testing.assert_array_equal(b1["inputs"][:, 1:], b1["targets"][:, :-1])
    # A jax.random.key seeds NumPy with its key data: deterministic, and another key
    # gives other windows.
    k = text.train_batch(tokens, step=7, batch_size=4, seq_len=16, key=jax.random.key(0))
    np.testing.assert_array_equal(
        k["inputs"],
        text.train_batch(tokens, step=7, batch_size=4, seq_len=16,
                         key=jax.random.key(0))["inputs"])
    assert not np.array_equal(
        k["inputs"],
        text.train_batch(tokens, step=7, batch_size=4, seq_len=16,
                         key=jax.random.key(1))["inputs"])
    # Every window is a contiguous slice of the corpus.
    haystack = tokens.tobytes()
    for row_in, row_t in zip(b1["inputs"], b1["targets"], strict=True):
        window = np.concatenate([row_in, row_t[-1:]]).astype(np.uint8).tobytes()
        assert window in haystack


def test_train_batch_shards_partition_the_global_batch():
    tokens = np.frombuffer(text.generated_corpus(10_000, key=0), np.uint8)
    full = text.train_batch(tokens, step=3, batch_size=8, seq_len=16, key=2)
    parts = [
        text.train_batch(tokens, 3, 8, 16, key=2, shard=i, num_shards=4)["inputs"]
        for i in range(4)
    ]
    np.testing.assert_array_equal(np.concatenate(parts), full["inputs"])
    with pytest.raises(ValueError, match="num_shards"):
        text.train_batch(tokens, 3, 8, 16, shard=0, num_shards=3)


def test_eval_batches_are_deterministic_and_cover_the_split():
    tokens = np.arange(1000) % 256
    first = list(text.eval_batches(tokens, batch_size=3, seq_len=10, num_batches=4))
    second = list(text.eval_batches(tokens, batch_size=3, seq_len=10, num_batches=4))
    assert len(first) == 4
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a["inputs"], b["inputs"])
        assert a["inputs"].shape == (3, 10)
    assert first[0]["inputs"][0, 0] == 0  # starts at the beginning
    assert first[-1]["targets"][-1, -1] == tokens[-1]  # ends at the end


def test_too_short_split_raises():
    with pytest.raises(ValueError, match="seq_len"):
        text.train_batch(np.zeros(10, np.uint8), step=0, batch_size=2, seq_len=10)


def test_unigram_log_prior_is_the_centred_smoothed_log_frequency():
    tokens = np.array([0, 0, 0, 1, 2, 2], np.uint8)
    prior = text.unigram_log_prior(tokens, vocab_size=4, pseudo_count=0.5)
    p = np.array([3.5, 1.5, 2.5, 0.5]) / 8.0  # (n + c) / (N + V c)
    np.testing.assert_allclose(prior, np.log(p) - np.log(p).mean(), rtol=1e-12)
    assert abs(prior.mean()) < 1e-12
    # Softmax of the prior is the smoothed unigram distribution.
    np.testing.assert_allclose(np.exp(prior) / np.exp(prior).sum(), p, rtol=1e-12)


def test_unigram_log_prior_rejects_bad_arguments():
    with pytest.raises(ValueError, match="pseudo_count"):
        text.unigram_log_prior(np.zeros(3, np.uint8), pseudo_count=0.0)
    with pytest.raises(ValueError, match="vocab_size"):
        text.unigram_log_prior(np.array([0, 5]), vocab_size=4)


def test_unigram_entropy_closed_form():
    tokens = np.array([0, 0, 1, 1, 2, 3, 3, 3], np.uint8)
    p = np.array([2, 2, 1, 3]) / 8
    assert text.unigram_entropy(tokens, vocab_size=8) == pytest.approx(-np.sum(p * np.log(p)))
