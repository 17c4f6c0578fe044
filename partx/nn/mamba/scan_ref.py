"""Sequential reference selective scans: the definition every faster backend is tested against.

Two recurrences, each written as the plain per-step loop over time (slow, obviously correct):

* **Mamba-1** (``selective_scan_ref``), the semantics of mamba-ssm's ``selective_scan_fn``: per channel
  ``d`` a diagonal state matrix ``A[d, :]`` (d_state entries) and input-dependent ``delta``, ``B``, ``C``::

      delta = softplus(delta + delta_bias)                      (if asked)
      h_t[d, n] = exp(delta_t[d] * A[d, n]) * h_{t-1}[d, n] + delta_t[d] * B_t[n] * u_t[d]
      y_t[d] = sum_n C_t[n] * h_t[d, n] + D[d] * u_t[d]         then  y *= silu(z)  (if z given)

  Layout as mamba-ssm (channels before time), so the CUDA kernel is a drop-in replacement:
  u, delta, z (B, D, L); A (D, N); B, C (B, N, L).

* **Mamba-2 / SSD** (``ssd_scan_ref``), the semantics of mamba-ssm's ``mamba_chunk_scan_combined``:
  one *scalar* decay per head, state (P, N) per head, B/C shared by the heads of a group::

      h_t[h] = exp(dt_t[h] * A[h]) * h_{t-1}[h] + dt_t[h] * x_t[h] (outer) B_t[g(h)]
      y_t[h] = h_t[h] @ C_t[g(h)] + D[h] * x_t[h]               then  y *= silu(z)  (if z given)

  Layout as mamba-ssm: x, z (B, L, H, P); dt (B, L, H); A (H,); B, C (B, L, G, N); D (H,) or (H, P).

Both compute in fp32 whatever the input dtype (as the mamba-ssm kernels do) and return the input dtype.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def prepare_delta(delta: torch.Tensor, delta_bias: torch.Tensor | None, delta_softplus: bool, bias_dim: int) -> torch.Tensor:
    """fp32 ``delta (+ bias)``, softplus-ed if asked. ``bias_dim`` is the axis the (channels,) bias runs along."""
    delta = delta.float()
    if delta_bias is not None:
        shape = [1] * delta.dim()
        shape[bias_dim] = -1
        delta = delta + delta_bias.float().view(shape)
    return F.softplus(delta) if delta_softplus else delta


def selective_scan_ref(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False,
    return_last_state: bool = False,
):
    """Mamba-1 selective scan, one time step at a time.

    Args:
        u: (B, D, L) input.   delta: (B, D, L) step sizes (before bias/softplus).
        A: (D, N) real diagonal state matrix (negative for a stable scan).
        B, C: (B, N, L) input-dependent input/output projections.
        D: (D,) skip weight.  z: (B, D, L) gate.  delta_bias: (D,).
    Returns:
        y (B, D, L) in u's dtype; with ``return_last_state`` also the final state (B, D, N) fp32.
    """
    dtype = u.dtype
    u32, A32, B32, C32 = u.float(), A.float(), B.float(), C.float()
    delta = prepare_delta(delta, delta_bias, delta_softplus, bias_dim=1)
    batch, dim, length = u.shape
    h = u32.new_zeros(batch, dim, A.shape[1])
    ys = []
    for t in range(length):
        decay = torch.exp(delta[:, :, t, None] * A32)  # (B, D, N)
        h = decay * h + (delta[:, :, t] * u32[:, :, t])[:, :, None] * B32[:, None, :, t]
        ys.append(torch.einsum("bdn,bn->bd", h, C32[:, :, t]))
    y = torch.stack(ys, dim=-1) if ys else u32.new_zeros(batch, dim, 0)
    y = finish_mamba1(y, u32, D, z)
    return (y.to(dtype), h) if return_last_state else y.to(dtype)


def finish_mamba1(y: torch.Tensor, u: torch.Tensor, D: torch.Tensor | None, z: torch.Tensor | None) -> torch.Tensor:
    """Skip connection and gate shared by every Mamba-1 backend. y, u, z: (B, D, L) fp32."""
    if D is not None:
        y = y + D.float()[None, :, None] * u
    if z is not None:
        y = y * F.silu(z.float())
    return y


def ssd_scan_ref(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    dt_bias: torch.Tensor | None = None,
    dt_softplus: bool = False,
    return_final_states: bool = False,
):
    """Mamba-2 (SSD) scan with a scalar decay per head, one time step at a time.

    Args:
        x: (B, L, H, P).  dt: (B, L, H).  A: (H,).  B, C: (B, L, G, N) with H divisible by G.
        D: (H,) or (H, P).  z: (B, L, H, P).  dt_bias: (H,).
    Returns:
        y (B, L, H, P) in x's dtype; with ``return_final_states`` also the state (B, H, P, N) fp32.
    """
    dtype = x.dtype
    batch, length, nheads, headdim = x.shape
    x32 = x.float()
    dt = prepare_delta(dt, dt_bias, dt_softplus, bias_dim=2)
    # Expand the groups to heads once: head h reads group h // (H / G).
    Bh = expand_groups(B.float(), nheads)  # (B, L, H, N)
    Ch = expand_groups(C.float(), nheads)
    h = x32.new_zeros(batch, nheads, headdim, B.shape[-1])
    ys = []
    for t in range(length):
        decay = torch.exp(dt[:, t] * A.float())  # (B, H)
        h = decay[:, :, None, None] * h + (dt[:, t, :, None] * x32[:, t])[..., None] * Bh[:, t, :, None, :]
        ys.append(torch.einsum("bhpn,bhn->bhp", h, Ch[:, t]))
    y = torch.stack(ys, dim=1) if ys else x32.new_zeros(batch, 0, nheads, headdim)
    y = finish_ssd(y, x32, D, z)
    return (y.to(dtype), h) if return_final_states else y.to(dtype)


def expand_groups(BC: torch.Tensor, nheads: int) -> torch.Tensor:
    """(B, L, G, N) -> (B, L, H, N): every head of a group sees that group's B (or C)."""
    groups = BC.shape[2]
    assert nheads % groups == 0, f"nheads {nheads} not divisible by ngroups {groups}"
    return BC.repeat_interleave(nheads // groups, dim=2)


def finish_ssd(y: torch.Tensor, x: torch.Tensor, D: torch.Tensor | None, z: torch.Tensor | None) -> torch.Tensor:
    """Skip connection and optional gate shared by every SSD backend. y, x, z: (B, L, H, P) fp32."""
    if D is not None:
        Df = D.float()
        y = y + (Df[:, None] if Df.dim() == 1 else Df) * x
    if z is not None:
        y = y * F.silu(z.float())
    return y
