"""A loss that refuses to go on when it stops being finite.

weaver-core 0.5.3 trains on whatever the loss returns: a NaN/inf input, an exploding learning rate or
an fp16 overflow gives ``Loss: nan`` at every step, a NaN checkpoint after each epoch and exit status 0.
``FiniteLoss`` wraps any loss module and raises ``NonFiniteLossError`` at the first non-finite value,
before ``backward()`` (so the weights are never updated from it and the checkpoints already written
stay those of a finite training). partx.weaver_run turns the error into one line.

The check costs one device-to-host sync per step, which weaver's own ``loss.item()`` already pays.
"""

from __future__ import annotations

import torch


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the message says at which step and what to check."""


class FiniteLoss(torch.nn.Module):
    """``loss(*args)`` unchanged, or ``NonFiniteLossError`` if it is not finite.

    Args:
        loss: the loss module to wrap (its ``forward`` signature is kept).
    """

    def __init__(self, loss: torch.nn.Module):
        super().__init__()
        self.loss = loss
        self.calls = 0

    def forward(self, *args, **kwargs) -> torch.Tensor:
        value = self.loss(*args, **kwargs)
        self.calls += 1
        if not bool(torch.isfinite(value.detach()).all()):
            where = "training" if torch.is_grad_enabled() else "evaluation"
            raise NonFiniteLossError(
                f"the {where} loss became {value.detach().float().flatten()[0].item()} at step {self.calls}: "
                f"stopped before it reached the weights. Check the inputs (python -m partx.preflight "
                f"--mode full ... finds NaN/inf), or lower the learning rate / disable --use-amp")
        return value
