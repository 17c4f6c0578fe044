"""Interpreting ParT: attention recording (``record``), statistics (``stats``), jets and subjets (``jets``), plots."""
