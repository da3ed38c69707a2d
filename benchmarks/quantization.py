# SPDX-License-Identifier: Apache-2.0
r"""What the table look-up quantizer of the 8-bit state buys over the binary search.

One process, candidates interleaved round by round (``interleaved_medians``): a jitted
``opt.update`` + ``optax.apply_updates`` on the transformer-like pytree of
``benchmarks.timing.transformer_like_params`` for

* ``gradkit.adamw_8bit`` and ``gradkit.with_8bit_state(gradkit.lion)``, each with the
  default quantizer (``nearest_code_lookup``: one gather into a bucket table) and with its
  textbook twin (``nearest_code_search``: ``jnp.searchsorted`` over the map's midpoints);
  both give the same codes (``tests/test_memory_8bit.py``);
* their 32-bit peers ``optax.adamw`` and ``optax.lion``.

Printed per candidate: median update, × ``optax.adamw``, × its 32-bit peer, and the
compiled step's scratch (``temp_size_in_bytes``) next to the largest leaf's float32 size.

    PYTHONPATH=. python benchmarks/quantization.py                  # ~4M params, < 1 min CPU
    PYTHONPATH=. python benchmarks/quantization.py --size=14000000  # the larger tree
"""

from __future__ import annotations

import argparse
import contextlib
import os
from unittest import mock

import jax
import optax

import gradkit
from benchmarks.timing import compiled_stats
from benchmarks.timing import interleaved_medians
from benchmarks.timing import markdown_table
from benchmarks.timing import transformer_like_params
from gradkit.memory import _quantization
from tests import helpers


def search_quantizer(x, signed, block_size):
    """``quantize_dynamic_to_blocks`` by the binary search (the textbook twin)."""
    code = _quantization.dynamic_quantization_map(signed)
    return _quantization.quantize_to_blocks(x, code, block_size)


def candidates():
    """name → (optimizer factory, 32-bit peer name, quantizer: "lookup" | "search" | None)."""
    out = {"optax.adamw": (lambda: optax.adamw(1e-3), "optax.adamw", None),
           "optax.lion": (lambda: optax.lion(1e-4), "optax.lion", None)}
    for quantizer in ("lookup", "search"):
        out[f"adamw_8bit [{quantizer}]"] = (
            lambda: gradkit.adamw_8bit(1e-3), "optax.adamw", quantizer)
        out[f"with_8bit_state(lion) [{quantizer}]"] = (
            lambda: gradkit.with_8bit_state(gradkit.lion(1e-4)), "optax.lion", quantizer)
    return out


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=4_000_000, help="≈ number of params")
    parser.add_argument("--repeats", type=int, default=9, help="interleaved timing rounds")
    args = parser.parse_args(argv)
    params = transformer_like_params(args.size)
    n = sum(x.size for x in jax.tree.leaves(params))
    leaf_mib = max(x.size for x in jax.tree.leaves(params)) * 4 / 2**20
    grads = jax.grad(helpers.parabola)(params)
    steps, carries, scratch, peers = {}, {}, {}, {}
    for name, (make, peer, quantizer) in candidates().items():
        opt = make()

        @jax.jit
        def step(carry, opt=opt):
            p, s = carry
            updates, s = opt.update(grads, s, p)
            return optax.apply_updates(p, updates), s

        patch = (mock.patch.object(_quantization, "quantize_dynamic_to_blocks",
                                   search_quantizer)
                 if quantizer == "search" else contextlib.nullcontext())
        with patch:  # the quantizer is chosen while the step is traced and compiled
            carry = (params, opt.init(params))
            scratch[name] = compiled_stats(step, carry)["temp_bytes"] / 2**20
            carries[name] = jax.block_until_ready(step(carry))
        steps[name], peers[name] = step, peer
    medians = interleaved_medians(steps, carries, rounds=args.repeats, warmup=1)
    rows = [[name, f"{1e3 * t:.1f} ms", f"{t / medians['optax.adamw']:.2f}",
             f"{t / medians[peers[name]]:.2f}", f"{scratch[name]:.1f}"]
            for name, t in medians.items()]
    table = markdown_table(["update", "median", "× optax.adamw", "× 32-bit peer",
                            "scratch MiB"], rows)
    print(f"{n:,} parameters (largest leaf {leaf_mib:.1f} MiB float32), "
          f"{jax.devices()[0].device_kind}, median of {args.repeats} interleaved rounds, "
          f"load average {os.getloadavg()[0]:.1f}\n\n{table}")
    return table


if __name__ == "__main__":
    main()
