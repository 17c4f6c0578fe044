"""Studies that drive the training scripts end to end (see analysis/*_study.py)."""
