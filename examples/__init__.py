"""gradkit's examples: one task per folder, ``main.py`` (flags) + ``train.py`` (logic).

A package so that ``python -m examples.<task>.main`` works from the repository root and
notebooks and tests import ``examples.<task>.train``.
"""
