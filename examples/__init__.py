"""gradkit's examples, importable as a package from the repository root.

Every example is a folder ``examples/<task>/`` in the Flax-examples layout: ``main.py``
(absl flags only), ``train.py`` (the importable logic, e.g. ``train_and_evaluate(config,
workdir)``) and, where it has one, ``configs/``. Shared code is imported by package path
(``from examples.lm import train``), never through ``sys.path``. Run an example from the
repository root as a module, ``python -m examples.lm.main --help``, or by path,
``python examples/lm/main.py --help`` (its ``main.py`` then puts the repository root on
``sys.path`` itself, the one place where a path is set).
"""
