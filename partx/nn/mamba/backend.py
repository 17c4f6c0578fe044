"""Run-time choice of the selective-scan implementation (``partx.config.mamba_backend()``).

    'auto'     mamba-ssm fused kernels when the tensors are on CUDA and mamba-ssm imports,
               otherwise the chunked pure-PyTorch scan (which also runs on GPU, unfused);
    'chunked'  ``scan_chunked`` (the fast CPU path);
    'ref'      ``scan_ref`` (sequential loop; the definition);
    'cuda'     force mamba-ssm (error if unavailable);
    'mambapy'  mambapy's parallel scan (Mamba-1 only; for cross-checking, slow on CPU).

Set with ``PARTX_MAMBA_BACKEND=...`` or ``partx.config.set_mamba_backend(...)``; a block may also pin one.
"""

from __future__ import annotations

import torch

from partx import config
from partx.nn.mamba import scan_chunked, scan_cuda, scan_ref

BACKENDS = ("auto", "chunked", "ref", "cuda", "mambapy")


def resolve(name: str | None, kind: str, device: torch.device) -> str:
    """Concrete backend for a scan of ``kind`` ("mamba1"/"mamba2") on ``device``; None reads the config."""
    name = name or config.mamba_backend()
    if name not in BACKENDS:
        raise ValueError(f"unknown mamba backend {name!r}; choose one of: {', '.join(BACKENDS)}")
    if torch.onnx.is_in_onnx_export() and name in ("auto", "chunked"):
        # the chunked scan loops over blocks of jets in Python: tracing would bake in the batch size.
        # The reference scan loops over time only, so exported graphs keep a dynamic batch axis
        # (the particle axis is fixed at the traced length either way).
        return "ref"
    if name == "auto":
        return "cuda" if device.type == "cuda" and scan_cuda.available(kind) else "chunked"
    if name == "mambapy" and kind != "mamba1":
        raise ValueError("mamba backend 'mambapy' only provides the Mamba-1 scan; use 'chunked' or 'ref' for mamba2")
    return name


def selective_scan_mambapy(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False, return_last_state=False):
    """Mamba-1 scan through mambapy's ``pscan``; arguments and shapes as ``scan_ref.selective_scan_ref``."""
    from mambapy.pscan import pscan

    dl = scan_ref.prepare_delta(delta, delta_bias, delta_softplus, bias_dim=1).transpose(1, 2)  # (B, L, D)
    u32 = u.float()
    decay = torch.exp(dl[..., None] * A.float())  # (B, L, D, N)
    inp = (dl * u32.transpose(1, 2))[..., None] * B.float().transpose(1, 2)[:, :, None, :]
    hs = pscan(decay, inp)  # (B, L, D, N)
    y = (hs @ C.float().transpose(1, 2)[..., None]).squeeze(-1).transpose(1, 2)  # (B, D, L)
    y = scan_ref.finish_mamba1(y, u32, D, z).to(u.dtype)
    return (y, hs[:, -1]) if return_last_state else y


_MAMBA1 = {
    "chunked": scan_chunked.selective_scan_chunked,
    "ref": scan_ref.selective_scan_ref,
    "cuda": scan_cuda.selective_scan_cuda,
    "mambapy": selective_scan_mambapy,
}


def selective_scan(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False, backend: str | None = None):
    """Mamba-1 selective scan with the chosen backend. u, delta, z (B, D, L); A (D, N); B, C (B, N, L)."""
    fn = _MAMBA1[resolve(backend, "mamba1", u.device)]
    return fn(u, delta, A, B, C, D, z=z, delta_bias=delta_bias, delta_softplus=delta_softplus)


def ssd_scan(x, dt, A, B, C, D=None, z=None, dt_bias=None, dt_softplus=False, chunk_size=None, backend: str | None = None):
    """Mamba-2 (SSD) scan with the chosen backend. x, z (B, L, H, P); dt (B, L, H); A (H,); B, C (B, L, G, N).

    ``chunk_size`` (None = the backend's default) only changes speed, never the result."""
    name = resolve(backend, "mamba2", x.device)
    kw = dict(D=D, z=z, dt_bias=dt_bias, dt_softplus=dt_softplus)
    if name == "ref":
        return scan_ref.ssd_scan_ref(x, dt, A, B, C, **kw)
    if chunk_size is not None:
        kw["chunk_size"] = chunk_size
    if name == "cuda":
        return scan_cuda.ssd_scan_cuda(x, dt, A, B, C, **kw)
    return scan_chunked.ssd_scan_chunked(x, dt, A, B, C, **kw)
