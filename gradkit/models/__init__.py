"""Flax reference models for the papers' tasks, one module per model family."""
