# SPDX-License-Identifier: Apache-2.0
"""Flax reference models for the papers' tasks, one module per model family."""
