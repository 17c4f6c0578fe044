"""Short fine-tune of an SVD-parameterised model with the rank penalty (SoftLMs-style), then recovery.

loss = cross-entropy + ``penalty`` * rank_penalty(model) (the soft fraction of the dense Linear
parameters the gates keep). The thresholds (one scalar per layer) get their own, larger learning rate:
they are the only parameters the penalty moves directly, and they must cross a spectrum of width s_1
within a few hundred steps.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from partx.compress.model import rank_penalty, svd_layers
from partx.quant.evaluate import Jets, predict

__all__ = ["finetune"]

log = logging.getLogger("partx.compress")


def _accuracy(model: nn.Module, jets: Jets, batch_size: int) -> float:
    model.eval()
    out = predict(model, jets, batch_size)
    model.train()
    return float(np.mean(out.argmax(1) == jets.labels))


def finetune(model: nn.Module, train: Jets, val: Jets | None, epochs: float, lr: float = 1e-4,
             threshold_lr: float = 0.2, penalty: float = 0.0, batch_size: int = 128, seed: int = 0,
             progress: bool = True) -> list[dict]:
    """Train ``model`` (logits out) on ``train`` for ``epochs`` passes; returns one history entry per epoch.

    ``penalty`` 0: plain cross-entropy (the recovery fine-tune after materialising).
    """
    g = torch.Generator().manual_seed(seed)
    thetas = [m.theta for m in svd_layers(model).values()]
    ids = {id(t) for t in thetas}
    others = [p for p in model.parameters() if id(p) not in ids and p.requires_grad]
    groups = [dict(params=others, lr=lr)] + ([dict(params=thetas, lr=threshold_lr)] if thetas else [])
    opt = torch.optim.Adam(groups)
    labels = torch.as_tensor(train.labels)
    n = len(train)
    steps = max(1, int(round(epochs * n / batch_size)))
    per_epoch = max(1, n // batch_size)
    history = []
    model.train()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=steps, desc="fine-tune" + (f" (penalty {penalty})" if penalty else ""), unit="step", disable=None)
    order = torch.randperm(n, generator=g)
    pos = 0
    for step in range(steps):
        if pos + batch_size > n:
            order, pos = torch.randperm(n, generator=g), 0
        idx = order[pos:pos + batch_size]
        pos += batch_size
        logits = model(*(t[idx] for t in train.inputs.values()))
        ce = F.cross_entropy(logits, labels[idx])
        pen = rank_penalty(model) if penalty and thetas else torch.zeros(())
        loss = ce + penalty * pen
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if bar:
            bar.update(1)
            bar.set_postfix(ce=f"{ce.item():.3f}", params=f"{pen.item():.2f}")
        if (step + 1) % per_epoch == 0 or step + 1 == steps:
            entry = dict(step=step + 1, ce=ce.item(), param_fraction=pen.item())
            if thetas:
                entry["ranks"] = {k: m.hard_rank() for k, m in svd_layers(model).items()}
            if val is not None:
                entry["val_accuracy"] = _accuracy(model, val, 256)
            history.append(entry)
            log.info("step %d: %s", step + 1, {k: v for k, v in entry.items() if k != "ranks"})
    if bar:
        bar.close()
    model.eval()
    return history
