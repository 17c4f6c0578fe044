#!/usr/bin/env python
"""Upper bound on what low-rank Linears can buy: latency of a model with every Linear truncated to rank r.

    OMP_NUM_THREADS=1 python scripts/lowrank_fixed_rank_speed.py ParT-demo runs/part/net_best_epoch_state.pt 32,16,8

Truncated SVD (``partx.compress``), no fine-tune; synthetic full-length jets (N = 128, batch 64), 1 thread,
all variants timed in the same run (docs/quantization.md). Prints latency, speed-up, parameters and the max
probability change of the untrained truncation.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from weaver.utils.data.config import DataConfig  # noqa: E402

from partx.compress import svd_layers, to_svd  # noqa: E402
from partx.perf import inputs, models, timing  # noqa: E402


def main(model: str, checkpoint: str, ranks: str) -> None:
    torch.set_num_threads(1)
    dc = DataConfig.load("data/JetClass/JetClass_full.yaml", load_observers=False, load_reweight_info=False)
    m = models.build_model(models.resolve_model(model, checkpoint, dict(for_inference=True)), dc, 128)
    x = inputs.as_forward_args(inputs.synthetic_inputs(dc, 128, 64, seed=0), dc.input_names)
    variants = {"fp32": m}
    for r in (int(v) for v in ranks.split(",")):
        c = copy.deepcopy(m)
        to_svd(c, soft=False)
        for name, layer in svd_layers(c).items():
            parent, _, child = name.rpartition(".")
            setattr(c.get_submodule(parent), child, layer.materialise(rank=min(r, layer.S.numel())))
        variants[f"rank{r}"] = c.eval()
    with torch.no_grad():
        ref = m(*x)
    base = None
    for k, v in variants.items():
        def fn(v=v):
            with torch.no_grad():
                return v(*x)

        s = timing.measure(fn, warmup=1, min_run_time=1, max_run_time=4)
        base = base or s.median_s
        n = sum(p.numel() for p in v.parameters())
        print(f"{k}: {s.median_s * 1e3:.0f} ms, speed-up {base / s.median_s:.2f}x, params {n}, "
              f"max|dp| {(fn() - ref).abs().max().item():.3f}", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:4])
