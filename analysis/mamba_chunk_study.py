#!/usr/bin/env python
"""Time chunk T of the blocked Mamba-1 scan (``scan_chunked.selective_scan_time_major``) at batch 1 / 64 and
N = 32..128, as the fused mixer calls it (2 d_inner = 512 channels in two groups, d_state 16), 1 thread,
T = 8..128 interleaved per round, median; prints ms and the ratio to T = 16. T >= N runs the same
configuration (T is capped at N), which shows the noise.

    python analysis/mamba_chunk_study.py
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch, time, statistics, sys
from partx.nn.mamba import scan_chunked as sc
torch.set_num_threads(1)
D,N=512,16
res={}
for B,L in [(1,32),(1,64),(1,128),(64,32),(64,128)]:
    g=torch.Generator().manual_seed(0)
    dl=torch.rand(B,L,D,generator=g)*0.1; dx=torch.randn(B,L,D,generator=g)
    A=-torch.rand(D,N,generator=g); Bt=torch.randn(B,L,2,N,generator=g); Ct=torch.randn(B,L,2,N,generator=g)
    Ts=[8,16,32,64,128]
    ts={T:[] for T in Ts}
    calls=20 if B==1 else 1
    with torch.inference_mode():
      for r in range(5 if B==1 else 3):
        for T in Ts:
          t=time.perf_counter()
          for _ in range(calls): sc.selective_scan_time_major(dl,dx,A,Bt,Ct,chunk_size=T)
          ts[T].append((time.perf_counter()-t)/calls)
    m={T:statistics.median(v) for T,v in ts.items()}
    print(B,L, "ms:", {T:round(v*1e3,2) for T,v in m.items()}, "rel T16:", {T:round(v/m[16],2) for T,v in m.items()}, flush=True)
