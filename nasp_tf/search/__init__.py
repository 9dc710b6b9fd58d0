"""Searchers: keras.Models that own the architecture variables and `train_step`."""
