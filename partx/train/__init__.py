"""Training / evaluation loops that weaver calls through network files (``tracking``: contrastive hit embeddings)."""
