# SPDX-License-Identifier: Apache-2.0
"""The reference byte-level language-model example and the trainer shared by the LM examples.

Modules: ``configs/default.py`` (the configuration of a run), ``input_pipeline.py``
(data), ``parallel_train.py`` (data-parallel steps), ``trainer.py`` (the shared trainer,
``train_and_evaluate(config, workdir)`` of one run, used by every LM example), ``report.py``
(plots, tables), ``train.py`` (this example's ``train_and_evaluate``: one run and its
plot), ``cpu.py`` (the ``--one_cpu_thread`` flag) and ``main.py`` (the command line).
"""
