"""gradkit's main demo: several optimizers on the reference LM (``examples/compare/main.py``)."""
