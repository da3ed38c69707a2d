"""Multi-device helpers built on JAX's own runtime (pmap and jax.sharding Mesh).

Two families live here: data-parallel training steps (batch split over devices,
gradients averaged) and population-parallel evolution strategies (population split
over devices, only fitness values gathered).
"""

# --- Data parallel (language-model and classifier training) -----------------------


# --- Population parallel (evolution strategies) -----------------------------------
