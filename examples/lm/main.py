# SPDX-License-Identifier: Apache-2.0
r"""Train the reference byte-level GPT with any gradkit or optax optimizer, on 1 or many devices.

From the repository root::

  python -m examples.lm.main --workdir=/tmp/lm
  python -m examples.lm.main --config.optimizer=lion --config.learning_rate=3e-4 \
      --config.opt_kwargs='{"weight_decay": 1.0}' --workdir=/tmp/lm
  python -m examples.lm.main --config.parallel=mesh --config.checkpoint_interval=100 \
      --workdir=/tmp/lm
  python -m examples.lm.main --config.parallel=mesh --config.checkpoint_interval=100 \
      --config.resume --workdir=/tmp/lm
  # two processes (hosts), 4 CPU devices each: run once per process id
  XLA_FLAGS=--xla_force_host_platform_device_count=4 python -m examples.lm.main \
      --config.parallel=mesh --coordinator_address=127.0.0.1:12345 --num_processes=2 \
      --process_id=0

The configuration and its fields are ``examples/lm/configs/default.py`` (``--config`` takes
another config file); the logic is ``examples/lm/train.py`` and the shared trainer
``examples/lm/trainer.py``. Writes ``<workdir>/<run name>/metrics.jsonl``, ``config.json``,
orbax checkpoints under ``<workdir>/<run name>/checkpoints`` and ``<workdir>/loss.png``
with the loss curves of every run in ``workdir``; in a multi-process run only process 0
writes.
"""

import pathlib

from absl import app
from absl import flags
from ml_collections import config_flags

from examples.lm import cpu

FLAGS = flags.FLAGS
flags.adopt_module_key_flags(cpu)  # --one_cpu_thread, listed by --help
flags.DEFINE_string("workdir", "/tmp/gradkit_lm",
                    "Output directory (runs, metrics, checkpoints, plots).")
config_flags.DEFINE_config_file(
    "config", str(pathlib.Path(__file__).parent / "configs" / "default.py"),
    "Training configuration.", lock_config=True)
flags.DEFINE_string("coordinator_address", None,
                    "Multi-process runs: host:port of process 0 (jax.distributed.initialize).")
flags.DEFINE_integer("num_processes", None, "Multi-process runs: number of processes.")
flags.DEFINE_integer("process_id", None, "Multi-process runs: this process's index.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if cpu.ONE_CPU_THREAD.value:
        cpu.use_one_cpu_thread()
    import jax

    if FLAGS.coordinator_address:  # before anything touches a device
        jax.distributed.initialize(FLAGS.coordinator_address, FLAGS.num_processes,
                                   FLAGS.process_id)
    from examples.lm import trainer
    from examples.lm.train import train_and_evaluate

    config = FLAGS.config
    result = train_and_evaluate(config, FLAGS.workdir)
    if jax.process_index() != 0:
        return
    print(
        f"{trainer.run_name(config)}: {result['num_params']:,} params, final val loss "
        f"{result['final_val_loss']:.4f} at step {result['last_step']}, "
        f"{1e3 * result['time_per_step']:.1f} ms/step; plot: {result['plot']}"
    )


if __name__ == "__main__":
    app.run(main)
