# SPDX-License-Identifier: Apache-2.0
"""Default configuration of the reference LM run (``python -m examples.lm.main``).

Every field can be overridden on the command line, e.g. ``--config.num_steps=2000``,
``--config.learning_rate=3e-4`` or ``--config.opt_kwargs='{"weight_decay": 1.0}'`` (a dict
literal); the shared trainer :mod:`examples.lm.trainer` reads nothing else.
"""

import ml_collections
from ml_collections import config_dict


def get_config() -> ml_collections.ConfigDict:
    """The defaults of one LM run (everything but where it writes, the ``--workdir``)."""
    config = ml_collections.ConfigDict()
    config.run_name = config_dict.placeholder(str)  # run directory; None: the optimizer name
    # Optimizer: a gradkit alias first, then optax (dotted: "contrib.muon").
    config.optimizer = "adamw"
    # Peak learning rate; None: trainer.OPTIMIZER_DEFAULTS[optimizer] or 1e-3.
    config.learning_rate = config_dict.placeholder(float)
    # Keyword arguments of the optimizer, on top of trainer.OPTIMIZER_DEFAULTS[optimizer].
    config.opt_kwargs = {}
    # "cosine" (warm-up then cosine to 10%), "constant", "wsd" or "wsd_s" (gradkit.schedules,
    # warm-up = warmup_steps, their other arguments from schedule_kwargs).
    config.schedule = "cosine"
    config.schedule_kwargs = {}
    config.warmup_steps = 50
    config.grad_clip = 0.0  # global-norm clipping before the optimizer; 0 disables
    # Model.
    config.d_model = 64
    config.num_layers = 2
    config.num_heads = 4
    config.mlp_ratio = 4
    config.norm = "pre"  # LayerNorm placement: "pre" or "peri"
    config.qk_layernorm = False
    # Xavier-uniform embedding + LayerNorm (the 8-bit recipe; with an 8-bit optimizer keep
    # its state 32-bit: opt_kwargs={"keep_32bit": ["tok_embed"]}).
    config.stable_embedding = False
    config.z_loss = 0.0  # output-logit z-loss coefficient (1e-4 typical)
    # Output-head bias at init: "unigram" = the training data's centred log unigram
    # frequencies (docs/lm.md: a zero bias stalls bounded-step optimizers), "zeros" = Flax.
    config.head_bias_init = "unigram"
    # Data.
    config.data_path = config_dict.placeholder(str)  # text file or directory; None: generated
    config.corpus_bytes = 2_000_000
    config.val_fraction = 0.05
    config.batch_size = 32  # global batch (all devices, all processes)
    config.seq_len = 64
    config.seed = 0  # init, data order and generated corpus
    # Loop.
    config.num_steps = 600
    config.stop_after = config_dict.placeholder(int)  # stop early at this step (then resume)
    config.log_interval = 10
    config.eval_interval = 50
    config.eval_batches = 4
    config.checkpoint_interval = 0  # 0: no checkpoints
    config.resume = False  # refused if the run's config differs, e.g. another num_steps
    config.parallel = "none"  # "none" | "pmap" | "mesh"
    config.progress = True  # tqdm progress bar
    return config
