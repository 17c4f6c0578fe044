"""FLOP counting with ``torch.utils.flop_counter.FlopCounterMode``, and what it does and does not count.

Conventions (say which you report):
  * FLOPs = 2 x multiply-accumulates (MACs). The ParT paper's "FLOPs" column is MACs: weaver's ParT at
    N = 128 counts ~670 MFLOP = ~335M MACs per jet. Reports give both.
  * Counted: matmul-like ops (mm, addmm, bmm, baddbmm, linear, convolution, SDPA kernels).
    Not counted: element-wise ops, softmax, norms, GELU, reductions, gathers/sorts — and therefore the
    Mamba selective-scan recurrence (element-wise multiply-adds), which FlopCounterMode cannot see.
    ``scan_flops_estimate`` gives an analytic figure for it; the report adds it in a separate column.
  * **The SDPA pitfall:** on CPU, ``F.scaled_dot_product_attention`` dispatches to a fused CPU kernel
    (``_scaled_dot_product_flash_attention_for_cpu``) that FlopCounterMode has no formula for: it counts
    0 FLOPs for the whole attention. Running the forward under ``sdpa_kernel(SDPBackend.MATH)`` makes SDPA
    decompose into bmm/softmax, which are counted. ``count_flops`` does this by default.
  * Dynamic-int8 Linear layers (``quantized::linear_dynamic``) are not counted either: FLOPs are computed
    on the fp32 model and reused for int8/bf16 rows.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode


@contextlib.contextmanager
def math_sdpa(enabled: bool = True):
    """Force SDPA's MATH backend (countable) when ``enabled``; a no-op otherwise."""
    if enabled:
        with sdpa_kernel(SDPBackend.MATH):
            yield
    else:
        yield


def count_flops(model: torch.nn.Module, args: tuple, kwargs: dict | None = None, math_backend: bool = True,
                per_module: bool = False):
    """FLOPs (not MACs) of one forward of ``model(*args, **kwargs)`` under no_grad.

    Returns the total, or ``(total, {module_name: flops})`` with ``per_module`` (module names as
    FlopCounterMode reports them: "Global", then dotted submodule paths; parents include children).
    """
    counter = _run_counted(model, args, kwargs, math_backend)
    total = int(counter.get_total_flops())
    if not per_module:
        return total
    mods = {name: int(sum(ops.values())) for name, ops in counter.get_flop_counts().items()}
    return total, mods


def flops_by_op(model: torch.nn.Module, args: tuple, math_backend: bool = True) -> dict[str, int]:
    """FLOPs per aten op type for the whole forward."""
    counter = _run_counted(model, args, None, math_backend)
    out: dict[str, int] = defaultdict(int)
    for op, n in counter.get_flop_counts().get("Global", {}).items():
        out[str(op)] += int(n)
    return dict(out)


def _run_counted(model, args, kwargs, math_backend: bool) -> FlopCounterMode:
    """One forward under FlopCounterMode; tries, in order, until one works:

    1. ``no_grad`` as is;
    2. autograd on: FlopCounterMode's module tracker registers grad hooks on module inputs and asserts
       on a tensor that requires grad but has no grad_fn, which is what a view of a Parameter made under
       ``no_grad`` is (ParT's ``cls_token.expand(...)`` fed to the class-attention blocks). Only forward
       ops run, so the count is unchanged; the graph is dropped right after;
    3. and 4. the same with partx's fused attention paths switched off (``partx.config.set_fused_attn``):
       FlexAttention's higher-order op has no implementation under a dispatch mode, so ParTFlash is counted
       on its explicit-softmax reference, which does the same matmuls.
    The attempt that worked is in ``counter.partx_note``. After any failed attempt ``torch._dynamo.reset()``
    is called (see the comment there): without it ParTFlash's later timed forwards fail.
    """
    from partx import config as _config

    errors = []
    fused_before = _config.use_fused_attn()
    try:
        for fused in (True, False):
            _config.set_fused_attn(fused and fused_before)
            for grad in (False, True):
                counter = FlopCounterMode(display=False)
                try:
                    with torch.set_grad_enabled(grad), math_sdpa(math_backend), counter:
                        out = model(*args, **(kwargs or {}))
                    del out
                    counter.partx_note = ("" if fused else "reference attention; ") + ("autograd on" if grad else "")
                    return counter
                except (AssertionError, TypeError, RuntimeError, NotImplementedError) as e:
                    errors.append(f"{type(e).__name__}: {str(e).splitlines()[0][:120]}")
    finally:
        _config.set_fused_attn(fused_before)
        if errors:
            # a forward that failed inside dynamo (FlexAttention's eager path traces through it) leaves the
            # failed frame cached as "skipped", and every later eager flex call then raises; start clean
            torch._dynamo.reset()
    raise RuntimeError("FLOP counting failed: " + " | ".join(errors))


def linear_flops(batch_tokens: int, d_in: int, d_out: int, bias: bool = True) -> int:
    """Analytic FLOPs of a Linear on ``batch_tokens`` rows: 2 * rows * d_in * d_out (bias adds are not counted)."""
    return 2 * batch_tokens * d_in * d_out


def attention_flops(batch: int, heads: int, n_q: int, n_k: int, head_dim: int) -> int:
    """Analytic FLOPs of softmax(Q K^T) V: two batched matmuls, 2 * 2 * B * H * Nq * Nk * d."""
    return 4 * batch * heads * n_q * n_k * head_dim


def scan_flops_estimate(model: torch.nn.Module, batch: int, length: int) -> int:
    """Analytic FLOPs of the Mamba selective scans that FlopCounterMode cannot see.

    Count per block, token, channel d and state n of the recurrence (partx.nn.mamba.scan_ref, Gu & Dao
    2023, Alg. 2): dA = exp(delta*A) is 1 multiply (+ 1 exp, not counted, as FLOP counters leave
    transcendentals out); (delta*u)*B is 1 multiply (delta*u is per channel, not per state: negligible);
    h = dA*h + dBu is 1 multiply + 1 add; y = sum_n C*h is 1 multiply + 1 add. Total 6 FLOPs = 3 MACs,
    so 6 * d_inner * d_state FLOPs per token and block: the sequential recurrence. (The mamba-ssm authors
    quote 9*B*L*D*N for their kernel's parallel associative scan, which does about twice the combine
    steps of a sequential loop: state-spaces/mamba issue 110.) MambaParT (8 layers x 2 directions = 16 blocks, d_inner 128,
    d_state 16) at N = 128: 16 * 128 * 6 * 128 * 16 = 25.2 MFLOP = 12.6 M MACs per jet.
    Counted for every module with ``d_inner`` and ``d_state`` attributes (partx's MambaBlock /
    Mamba2Block; Mamba-2's scalar-per-head decay makes this an upper bound there). 0 without such blocks.
    """
    total = 0
    for mod in model.modules():
        d_inner, d_state = getattr(mod, "d_inner", None), getattr(mod, "d_state", None)
        if isinstance(d_inner, int) and isinstance(d_state, int):
            total += 6 * batch * length * d_inner * d_state
    return total
