"""Mamba (selective state-space) blocks and the bidirectional particle mixer.

One concept per file: ``scan_ref`` (sequential definition), ``scan_chunked`` (fast CPU scans),
``scan_cuda`` (mamba-ssm kernels, guarded), ``backend`` (run-time choice), ``block`` (mamba-ssm
compatible Mamba / Mamba2 blocks), ``mixer`` (``BiMambaMixer``). See docs/mamba.md.
"""
