# SPDX-License-Identifier: Apache-2.0
"""Default configuration of the spectrum example (``python -m examples.spectrum.main``).

``experiment`` picks what runs: ``eos`` (edge of stability, fields ``eos.*``), ``eos_plot``
(the plot of every ``eos`` run in the workdir) or ``outliers`` (bulk + outliers, fields
``outliers.*``). Every field can be overridden on the command line, e.g.
``--config.eos.learning_rate=0.3``.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    """Edge of stability: full-batch GD at η = 0.2 for 6000 steps; bulk + outliers: C = 2..10."""
    config = ml_collections.ConfigDict()
    config.experiment = "eos"  # "eos", "eos_plot" or "outliers"
    config.progress = True  # tqdm progress bars
    # Edge of stability (Cohen et al. 2021): a tanh MLP, full batch, sharpness by Lanczos.
    eos = config.eos = ml_collections.ConfigDict()
    eos.optimizer = "gd"  # "gd" or "adam"
    eos.learning_rate = 0.2
    eos.b1 = 0.9  # Adam
    eos.b2 = 0.999  # Adam
    eos.eps = 1e-8  # Adam
    eos.num_steps = 6000
    eos.sharpness_interval = 50
    eos.lanczos_iterations = 20
    eos.num_examples = 1000
    eos.dim = 20
    eos.classes = 10
    eos.separation = 0.3
    eos.width = 64
    eos.depth = 2
    eos.reach_fraction = 0.9
    eos.seed = 0
    # Bulk + outliers (Sagun et al. 2017): top eigenvalues and SLQ density after training.
    outliers = config.outliers = ml_collections.ConfigDict()
    outliers.classes = (2, 4, 6, 8, 10)
    outliers.num_examples = 1000
    outliers.dim = 20
    outliers.separation = 0.7
    outliers.width = 32
    outliers.depth = 2
    outliers.train_steps = 200
    outliers.learning_rate = 0.05  # full-batch GD with momentum 0.9
    outliers.num_top = 30
    outliers.lanczos_iterations = 60
    outliers.slq_iterations = 60
    outliers.slq_probes = 2
    outliers.seed = 0
    return config
