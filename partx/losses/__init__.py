"""Losses for weaver network files (``get_loss``): each guarded against non-finite values."""
