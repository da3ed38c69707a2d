r"""Train the reference byte-level GPT with any gradkit or optax optimizer, on 1 or many devices.

From the repository root (``python -m examples.lm.main`` works the same)::

  python examples/lm/main.py --optimizer=adamw --workdir=/tmp/lm
  python examples/lm/main.py --optimizer=lion --learning_rate=3e-4 \
      --opt_kwargs='{"weight_decay": 1.0}' --workdir=/tmp/lm
  python examples/lm/main.py --parallel=mesh --checkpoint_every=100 --workdir=/tmp/lm
  python examples/lm/main.py --parallel=mesh --checkpoint_every=100 --resume --workdir=/tmp/lm
  # two processes (hosts), 4 CPU devices each: run once per process id
  XLA_FLAGS=--xla_force_host_platform_device_count=4 python examples/lm/main.py \
      --parallel=mesh --coordinator_address=127.0.0.1:12345 --num_processes=2 --process_id=0

Writes ``<workdir>/<run_name>/metrics.jsonl``, ``config.json``, orbax checkpoints under
``<workdir>/<run_name>/checkpoints`` and ``<workdir>/loss.png`` with the loss curves of
every run found in ``workdir`` (so several invocations with different ``--run_name``
end up in one plot); in a multi-process run only process 0 writes. The logic is
``examples/lm/train.py``; ``--help`` lists every flag.
"""

from __future__ import annotations

import os
import pathlib
import sys

if __package__ in (None, ""):  # run by path: make the `examples` package importable
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

from absl import app
from absl import flags

from examples.lm import cli

cli.define_flags()
flags.DEFINE_string("coordinator_address", None,
                    "Multi-process runs: host:port of process 0 (jax.distributed.initialize).")
flags.DEFINE_integer("num_processes", None, "Multi-process runs: number of processes.")
flags.DEFINE_integer("process_id", None, "Multi-process runs: this process's index.")
cli.define_one_cpu_thread_flag()
flags.adopt_module_key_flags(cli)
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if FLAGS.one_cpu_thread:
        cli.use_one_cpu_thread()
    import jax

    if FLAGS.coordinator_address:  # before anything touches a device
        jax.distributed.initialize(FLAGS.coordinator_address, FLAGS.num_processes,
                                   FLAGS.process_id)
    from examples.lm import report
    from examples.lm import train

    config = cli.config_from_flags(FLAGS)
    result = train.train_and_evaluate(config, FLAGS.workdir)
    if jax.process_index() != 0:
        return
    plot = report.plot_runs(report.runs_in_workdir(FLAGS.workdir),
                            os.path.join(FLAGS.workdir, "loss.png"), "byte-level LM")
    print(
        f"{config.name}: {result['num_params']:,} params, final val loss "
        f"{result['final_val_loss']:.4f} at step {result['last_step']}, "
        f"{1e3 * result['time_per_step']:.1f} ms/step; plot: {plot}"
    )


if __name__ == "__main__":
    app.run(main)
