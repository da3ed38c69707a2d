# SPDX-License-Identifier: Apache-2.0
"""gradkit's main demo: several optimizers on the reference LM.

Run ``python -m examples.compare.main`` from the repository root.
"""
