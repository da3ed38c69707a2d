# SPDX-License-Identifier: Apache-2.0
"""Default configuration of the multitask example (``python -m examples.multitask.main``).

Full size: the numbers in docs/multitask.md. Every field can be overridden on the command
line: ``--config.<field>=<value>``.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    """The four experiments at full size."""
    config = ml_collections.ConfigDict()
    # Which experiments to run (examples.multitask.train.EXPERIMENTS).
    config.experiments = ("pcgrad_toy", "gcond_toy", "adadagrad", "sven")
    config.seed = 0  # seed of data and init
    config.log_interval = 25  # steps per logged row (GCond)
    # PCGrad toy.
    config.toy_steps = 50_000  # Adam steps per toy trajectory
    config.toy_starts = ((-8.5, 7.5), (9.0, 9.0), (0.0, 0.0))  # starting points (x, y)
    config.learning_rate_toy = 1e-3  # Adam learning rate on the toy
    # GCond toy.
    config.gcond_steps = 600  # optimizer steps
    config.gcond_micro_batches = 4  # micro-batches accumulated per step
    config.gcond_micro_batch_size = 32  # samples per micro-batch
    config.gcond_hidden = 32  # trunk width
    config.gcond_learning_rate = 3e-3  # Adam learning rate (b1 = 0 with GCond)
    config.gcond_seeds = 3  # minibatch seeds per mode
    # AdAdaGrad.
    config.ada_steps = 300  # optimizer steps
    config.ada_num_samples = 8192  # generated training samples
    config.ada_initial_batch = 8  # initial (and fixed-run) batch size
    config.ada_max_batch = 2048  # largest batch
    config.ada_hidden = 64  # hidden width of the classifier
    config.ada_center_scale = 0.5  # std of the class centers (overlap)
    config.ada_learning_rate = 0.1  # AdaGrad learning rate
    config.ada_optimizer = "adagrad"  # "adagrad" or "adagrad_norm"
    config.ada_test = "norm"  # batch-size test (gradkit.ADADAGRAD_TESTS)
    config.ada_eta = 0.5  # norm-test η (the paper: 0.1 on MNIST, 0.5 on CIFAR-10)
    config.ada_theta = 0.5  # inner-product-test θ
    config.ada_nu = 1.0  # orthogonality-test ν
    config.ada_target_loss = 1.0  # full-data train loss to reach
    config.ada_eval_interval = 5  # steps per full-data evaluation
    # Sven.
    config.sven_methods = ("adam", "sven")  # optimizers on the regression
    config.sven_epochs = 100
    config.sven_num_train = 10_000  # train (and val) points
    config.sven_batch_size = 128
    config.sven_learning_rate = 0.1  # Sven learning rate
    config.sven_k = 64  # singular values kept
    config.sven_rtol = 1e-3  # relative singular-value cut
    config.adam_learning_rate = 1e-3  # Adam learning rate (Sven comparison)
    return config
