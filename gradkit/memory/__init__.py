"""Memory-efficient optimizer state.

* 8-bit block-wise state (Dettmers et al., 2022, arXiv 2110.02861; reference
  bitsandbytes): :func:`dynamic_quantization_map`, :func:`quantize_blockwise`,
  :func:`dequantize_blockwise`, the wrapper :func:`with_8bit_state` for any optax
  transformation and the alias :func:`adamw_8bit`; :class:`StableEmbedding` is in
  :mod:`gradkit.models.stable_embedding`.
"""

from gradkit.memory._8bit import Quantized8bit
from gradkit.memory._8bit import With8bitState
from gradkit.memory._8bit import adamw_8bit
from gradkit.memory._8bit import with_8bit_state
from gradkit.memory._quantization import dequantize_blockwise
from gradkit.memory._quantization import dynamic_quantization_map
from gradkit.memory._quantization import linear_quantization_map
from gradkit.memory._quantization import quantize_blockwise

__all__ = (
    "Quantized8bit",
    "With8bitState",
    "adamw_8bit",
    "dequantize_blockwise",
    "dynamic_quantization_map",
    "linear_quantization_map",
    "quantize_blockwise",
    "with_8bit_state",
)
