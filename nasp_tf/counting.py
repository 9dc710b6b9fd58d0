"""Counting a network's learnable parameters, the way the papers count them."""

import numpy as np


def parameter_count(*layers):
    """Learnable parameters of `layers` (batch-norm statistics and other
    non-trainable state are not counted; a weight shared by two layers is
    counted once)."""
    seen, total = set(), 0
    for layer in layers:
        for weight in layer.trainable_weights:
            if id(weight) not in seen:
                seen.add(id(weight))
                total += int(np.prod(weight.shape))
    return total
