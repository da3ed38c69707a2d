r"""Train a byte-level GPT with any gradkit or optax optimizer, on 1 or many devices.

Examples::

  python examples/lm.py --optimizer=adamw --workdir=/tmp/lm
  python examples/lm.py --optimizer=lion --learning_rate=3e-4 \
      --opt_kwargs='{"weight_decay": 1.0}' --workdir=/tmp/lm
  python examples/lm.py --parallel=pmap --checkpoint_every=100 --workdir=/tmp/lm
  python examples/lm.py --parallel=pmap --checkpoint_every=100 --resume --workdir=/tmp/lm

Writes ``<workdir>/<run_name>/metrics.jsonl``, orbax checkpoints under
``<workdir>/<run_name>/checkpoints`` and ``<workdir>/loss.png`` with the loss curves of
every run found in ``workdir`` (so several invocations with different ``--run_name``
end up in one plot). The logic lives in ``lm_lib.py``.
"""

from __future__ import annotations

import os
import sys

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import lm_lib

lm_lib.define_flags()
flags.DEFINE_string("optimizer", "adamw", "gradkit or optax alias name (gradkit first).")
flags.DEFINE_string("run_name", None, "Run directory name under workdir (default: optimizer).")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    cfg = lm_lib.config_from_flags(FLAGS)
    result = lm_lib.train(cfg)
    plot = lm_lib.plot_runs(
        lm_lib.runs_in_workdir(cfg.workdir), os.path.join(cfg.workdir, "loss.png"), "byte-level LM"
    )
    print(
        f"{cfg.name}: {result['num_params']:,} params, final val loss "
        f"{result['final_val_loss']:.4f} at step {result['last_step']}, "
        f"{1e3 * result['time_per_step']:.1f} ms/step; plot: {plot}"
    )


if __name__ == "__main__":
    app.run(main)
