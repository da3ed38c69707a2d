# SPDX-License-Identifier: Apache-2.0
"""A small decoder-only (GPT-style) Flax linen transformer: gradkit's reference LM.

The seed papers for Lion (arXiv 2302.06675), Sophia (arXiv 2305.14342), SPAM (arXiv
2501.06842) and Stable-SPAM (arXiv 2502.17055) measure on GPT/LLaMA-style language
models; this is one clean, small model that every method plugs into. It is sized by
:class:`TransformerConfig` from ~0.1M to ~100M parameters (see
:func:`TransformerConfig.num_params`).

Architecture: learned token and position embeddings, ``num_layers`` blocks of causal
multi-head self-attention and a GELU MLP (width ``mlp_ratio·d_model``), a final
LayerNorm and an untied output head. Options for the stability interventions of

* Wortsman et al., `Small-scale proxies for large-scale Transformer training
  instabilities <https://arxiv.org/abs/2309.14322>`_, 2023: **qk-layernorm** (§3.1.1, a
  LayerNorm on queries and keys, per head, before the dot product) and the **output
  logit z-loss** (§3.1.2, ``1e-4·log²Z`` added to the loss, see :func:`lm_loss`);
* Kim et al., `Peri-LN: Revisiting Normalization Layer in the Transformer Architecture
  <https://arxiv.org/abs/2502.02732>`_, 2025: **Peri-LN** placement,
  ``x ← x + LN(F(LN(x)))`` around every sub-layer ``F`` instead of Pre-LN's
  ``x ← x + F(LN(x))``; with ``norm="peri"`` the embedding output is normalised too
  (``embed_norm``, which can be switched off separately).

Pre-LN is the default (GPT-2 / nanoGPT placement). Differences from GPT-2: no dropout,
no biases on the attention/MLP projections when ``use_bias=False``, untied head.

**Output-bias initialisation.** ``head_bias_init`` sets the head's bias at init, e.g. to
the data's centred log unigram frequencies (:func:`gradkit.data.text.unigram_log_prior`),
so the model predicts the unigram distribution from step 0. With the zero default, an
optimizer whose per-coordinate step is bounded by the learning rate (Lion, Sophia, any
sign method) moves that bias only ~lr per step, and the model instead encodes the
unigram distribution in one input-independent direction of the residual stream that
drowns the context after the final LayerNorm; :func:`common_direction_share` of the
residual stream (sown as ``intermediates/residual``) measures that failure.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any
from typing import Literal

import flax.linen as nn
import jax
import jax.numpy as jnp

from gradkit.models.stable_embedding import StableEmbedding

NormPlacement = Literal["pre", "peri"]


@dataclasses.dataclass(frozen=True)
class TransformerConfig:
    """Size and options of :class:`Transformer`.

    Attributes:
      vocab_size: number of token ids (256 for byte-level text).
      max_len: longest sequence (number of learned positions).
      d_model: residual-stream width.
      num_layers: number of blocks.
      num_heads: attention heads; must divide ``d_model``.
      mlp_ratio: MLP hidden width is ``mlp_ratio * d_model``.
      norm: ``"pre"`` (Pre-LN, default) or ``"peri"`` (Peri-LN).
      embed_norm: LayerNorm on the embedding output; ``None`` means "on for Peri-LN".
      qk_layernorm: LayerNorm on queries and keys (Wortsman et al. 2023, §3.1.1).
      use_bias: biases in the projections and LayerNorms.
      stable_embedding: the token embedding is a
        :class:`gradkit.models.stable_embedding.StableEmbedding` (Xavier-uniform init,
        LayerNorm before the positions are added; Dettmers et al. 2022, §2.3).
      head_bias_init: initial output-head bias (``vocab_size`` floats, a tuple so the
        config stays hashable), e.g. ``tuple(unigram_log_prior(train_tokens))``;
        ``None`` keeps Flax's zeros. Needs ``use_bias``.
      dtype: computation dtype (params stay ``param_dtype``).
      param_dtype: parameter dtype.
    """

    vocab_size: int = 256
    max_len: int = 64
    d_model: int = 64
    num_layers: int = 2
    num_heads: int = 4
    mlp_ratio: int = 4
    norm: NormPlacement = "pre"
    embed_norm: bool | None = None
    qk_layernorm: bool = False
    use_bias: bool = True
    stable_embedding: bool = False
    head_bias_init: tuple[float, ...] | None = None
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    def __post_init__(self):
        for name in ("vocab_size", "max_len", "d_model", "num_layers", "num_heads", "mlp_ratio"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
        if self.d_model % self.num_heads:
            raise ValueError(
                f"`num_heads` ({self.num_heads}) must divide `d_model` ({self.d_model})."
            )
        if self.norm not in ("pre", "peri"):
            raise ValueError(f"`norm` must be one of 'pre', 'peri', got {self.norm!r}.")
        if self.head_bias_init is not None:
            if not isinstance(self.head_bias_init, tuple):
                raise TypeError(
                    "`head_bias_init` must be a tuple of floats (hashable), got "
                    f"{type(self.head_bias_init).__name__}; wrap it in tuple(...)."
                )
            if len(self.head_bias_init) != self.vocab_size or not self.use_bias:
                raise ValueError(
                    f"`head_bias_init` needs `use_bias=True` and `vocab_size` "
                    f"({self.vocab_size}) values, got {len(self.head_bias_init)} "
                    f"(use_bias={self.use_bias})."
                )

    @property
    def use_embed_norm(self) -> bool:
        return self.norm == "peri" if self.embed_norm is None else bool(self.embed_norm)

    def num_params(self) -> int:
        """Number of parameters (exact; checked against ``init`` in the tests)."""
        d, h, v, length = self.d_model, self.mlp_ratio * self.d_model, self.vocab_size, self.max_len
        b = 1 if self.use_bias else 0
        ln = (2 if self.use_bias else 1) * d
        head_dim = d // self.num_heads
        attn = 4 * d * d + b * 4 * d
        if self.qk_layernorm:
            attn += 2 * (2 if self.use_bias else 1) * head_dim
        mlp = 2 * d * h + b * (h + d)
        norms_per_block = 4 if self.norm == "peri" else 2
        block = attn + mlp + norms_per_block * ln
        total = v * d + length * d + self.num_layers * block + ln + d * v + b * v
        if self.use_embed_norm:
            total += ln
        if self.stable_embedding:
            total += 2 * d  # its LayerNorm (always with bias)
        return total


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention with optional qk-layernorm."""

    config: TransformerConfig

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        cfg = self.config
        batch, length, d = x.shape
        head_dim = d // cfg.num_heads
        dense = dict(use_bias=cfg.use_bias, dtype=cfg.dtype, param_dtype=cfg.param_dtype)
        qkv = nn.Dense(3 * d, name="qkv", **dense)(x)
        q, k, v = jnp.split(qkv.reshape(batch, length, 3 * cfg.num_heads, head_dim), 3, axis=2)
        if cfg.qk_layernorm:
            ln = dict(use_bias=cfg.use_bias, dtype=cfg.dtype, param_dtype=cfg.param_dtype)
            q = nn.LayerNorm(name="q_norm", **ln)(q)
            k = nn.LayerNorm(name="k_norm", **ln)(k)
        logits = jnp.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(head_dim)
        causal = jnp.tril(jnp.ones((length, length), dtype=bool))
        logits = jnp.where(causal, logits.astype(jnp.float32), jnp.finfo(jnp.float32).min)
        weights = jax.nn.softmax(logits, axis=-1).astype(cfg.dtype)
        out = jnp.einsum("bhqk,bkhd->bqhd", weights, v).reshape(batch, length, d)
        return nn.Dense(d, name="out", **dense)(out)


class FeedForward(nn.Module):
    """The block's feed-forward sub-layer: ``fc`` (width ``mlp_ratio·d_model``), GELU, ``proj``."""

    config: TransformerConfig

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        cfg = self.config
        dense = dict(use_bias=cfg.use_bias, dtype=cfg.dtype, param_dtype=cfg.param_dtype)
        x = nn.Dense(cfg.mlp_ratio * cfg.d_model, name="fc", **dense)(x)
        return nn.Dense(cfg.d_model, name="proj", **dense)(nn.gelu(x))


class Block(nn.Module):
    """One transformer block, Pre-LN or Peri-LN."""

    config: TransformerConfig

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        cfg = self.config
        ln = dict(use_bias=cfg.use_bias, dtype=cfg.dtype, param_dtype=cfg.param_dtype)
        for name, sublayer in (("attn", CausalSelfAttention), ("mlp", FeedForward)):
            y = sublayer(cfg, name=name)(nn.LayerNorm(name=f"{name}_norm_in", **ln)(x))
            if cfg.norm == "peri":
                y = nn.LayerNorm(name=f"{name}_norm_out", **ln)(y)
            x = x + y
        return x


class Transformer(nn.Module):
    """Decoder-only transformer: int token ids ``[B, T]`` → logits ``[B, T, vocab]``.

    Example::

      cfg = TransformerConfig(vocab_size=256, max_len=64, d_model=64, num_layers=2)
      model = Transformer(cfg)
      params = model.init(jax.random.key(0), jnp.zeros((1, 64), jnp.int32))
      logits = model.apply(params, tokens)  # float32[B, T, 256]
    """

    config: TransformerConfig

    @nn.compact
    def __call__(self, tokens: jax.Array) -> jax.Array:
        cfg = self.config
        length = tokens.shape[-1]
        if length > cfg.max_len:
            raise ValueError(f"sequence length {length} exceeds `max_len` {cfg.max_len}.")
        init = nn.initializers.normal(0.02)
        emb = dict(embedding_init=init, dtype=cfg.dtype, param_dtype=cfg.param_dtype)
        if cfg.stable_embedding:
            x = StableEmbedding(cfg.vocab_size, cfg.d_model, dtype=cfg.dtype,
                                param_dtype=cfg.param_dtype, name="tok_embed")(tokens)
        else:
            x = nn.Embed(cfg.vocab_size, cfg.d_model, name="tok_embed", **emb)(tokens)
        x = x + nn.Embed(cfg.max_len, cfg.d_model, name="pos_embed", **emb)(jnp.arange(length))
        ln = dict(use_bias=cfg.use_bias, dtype=cfg.dtype, param_dtype=cfg.param_dtype)
        if cfg.use_embed_norm:
            x = nn.LayerNorm(name="embed_norm", **ln)(x)
        for i in range(cfg.num_layers):
            x = Block(cfg, name=f"block_{i}")(x)
        # The residual stream the head reads; collected only with mutable="intermediates".
        self.sow("intermediates", "residual", x)
        x = nn.LayerNorm(name="final_norm", **ln)(x)
        bias_init = nn.initializers.zeros_init()
        if cfg.head_bias_init is not None:
            bias_init = nn.initializers.constant(jnp.asarray(cfg.head_bias_init))
        logits = nn.Dense(
            cfg.vocab_size,
            use_bias=cfg.use_bias,
            kernel_init=init,
            bias_init=bias_init,
            dtype=cfg.dtype,
            param_dtype=cfg.param_dtype,
            name="head",
        )(x)
        return logits.astype(jnp.float32)


def common_direction_share(h: jax.Array) -> jax.Array:
    r"""Share of the vectors ``h[..., d]`` that is the same for every one of them.

    .. math::

        \frac{\lVert \bar h \rVert^2}{\operatorname{mean}_i \lVert h_i \rVert^2},
        \qquad \bar h = \operatorname{mean}_i h_i

    over all leading indices ``i`` (every token of a batch). It is 1 when every token
    carries the same vector and ~0 when the vectors are centred. On the residual stream
    (``Transformer`` sows it as ``intermediates/residual``) a value near 1 means an
    input-independent direction dominates what the final LayerNorm passes to the head:
    the failure a zero-initialised output bias causes under bounded-step optimizers.
    """
    h = h.astype(jnp.float32).reshape(-1, h.shape[-1])
    mean = jnp.mean(h, axis=0)
    return jnp.sum(mean * mean) / jnp.maximum(jnp.mean(jnp.sum(h * h, axis=-1)), 1e-30)


def lm_loss(
    logits: jax.Array,
    targets: jax.Array,
    z_loss: float = 0.0,
    mask: jax.Array | None = None,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    r"""Mean next-token cross-entropy plus the optional output-logit z-loss.

    .. math::

        L = \frac{1}{N}\sum_{i}\big(-\log \mathrm{softmax}(z_i)_{y_i}
            + \alpha\,\log^2 Z_i\big),\qquad Z_i = \sum_j e^{z_{ij}}

    with α = ``z_loss`` (Wortsman et al. 2023, §3.1.2, use 1e-4; PaLM's auxiliary loss).

    Args:
      logits: ``[..., vocab]`` float logits.
      targets: ``[...]`` int token ids.
      z_loss: coefficient α ≥ 0 of ``log²Z`` (0 disables it).
      mask: optional ``[...]`` weights (1 = counted).

    Returns:
      ``(loss, aux)`` with ``aux = {"ce": mean cross-entropy, "log_z": mean log Z}``.
    """
    logits = logits.astype(jnp.float32)
    log_z = jax.nn.logsumexp(logits, axis=-1)
    target_logit = jnp.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]
    ce = log_z - target_logit
    per_token = ce + z_loss * jnp.square(log_z) if z_loss else ce
    if mask is None:
        mask = jnp.ones_like(ce)
    denom = jnp.maximum(jnp.sum(mask), 1.0)

    def mean(x):
        return jnp.sum(x * mask) / denom

    return mean(per_token), {"ce": mean(ce), "log_z": mean(log_z)}
