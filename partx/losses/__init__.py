"""Losses: ``finite`` (guard for weaver network files' ``get_loss``: each loss checked for non-finite
values) and ``infonce`` (contrastive tracking losses of HEPT and Lampa)."""
