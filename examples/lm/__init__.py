"""The reference byte-level language-model example (training loop shared by the LM examples).

Modules: ``configs/default.py`` (the :class:`~examples.lm.configs.default.Config` of a
run), ``input_pipeline.py`` (data), ``parallel_train.py`` (data-parallel steps),
``train.py`` (``train_and_evaluate(config, workdir)``), ``report.py`` (plots, tables),
``cli.py`` (the absl flags shared by the LM mains) and ``main.py`` (the command line).
"""
