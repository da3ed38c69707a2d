# SPDX-License-Identifier: Apache-2.0
"""gradkit's examples, importable as a package from the repository root.

Every example is a folder ``examples/<task>/`` in the Flax-examples layout: ``main.py``
(absl flags: ``--workdir`` and ``--config``, an ``ml_collections`` config file whose fields
are overridden as ``--config.<field>=<value>``), ``train.py`` (the importable logic,
``train_and_evaluate(config, workdir)``) and ``configs/default.py`` (``get_config()``).
Run an example from the repository root as a module: ``python -m examples.<task>.main``.
The LM examples share the trainer :mod:`examples.lm.trainer`; :mod:`examples.config_checks`
validates configurations.
"""
