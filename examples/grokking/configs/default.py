# SPDX-License-Identifier: Apache-2.0
"""Default configuration of the grokking example (``python -m examples.grokking.main``).

Every field can be overridden on the command line: ``--config.<field>=<value>``.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    """One grokking run (defaults: the paper's Figure 6 ⊥AdamW run, 300 epochs)."""
    config = ml_collections.ConfigDict()
    config.op = "+"  # operation a op b mod p
    config.p = 113  # modulus (prime for "/")
    config.train_fraction = 0.4  # fraction of all pairs used for training
    config.loss = "softmax"  # cross-entropy kind
    config.optimizer = "perp_adamw"
    config.lr = 0.005  # learning rate
    config.weight_decay = 0.0  # decoupled for AdamW, L2 for SGD
    config.b1 = 0.9  # AdamW beta1
    config.b2 = 0.99  # AdamW beta2 (paper 0.99; its StableMax runs 0.999)
    config.adam_eps = 1e-25  # AdamW epsilon (paper: 1e-25)
    config.momentum = 0.8  # SGD momentum (paper's ⊥SGD: 0.8)
    config.dtype = "float32"  # model and loss dtype
    config.model = "mlp"
    config.epochs = 300  # full-batch epochs (steps)
    config.log_interval = 10  # log all metrics (train and test) every this many epochs
    config.chunk = 1000  # epochs per jitted call (a multiple of log_interval)
    config.stop_at_test_acc = 0.0  # if > 0, stop after the chunk reaching this test acc
    config.max_minutes = 0.0  # if > 0, stop after the first chunk ending past this time
    config.seed = 0  # seed of the split and the initialisation
    config.progress = True  # tqdm progress bars
    return config
