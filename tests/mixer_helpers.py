"""Shared by the mixer tests: a padded toy batch and an ONNX round trip."""

from __future__ import annotations

import warnings

import torch

C, H = 32, 4


def make_batch(B=3, N=12, n_real=(12, 7, 3), seed=0, device="cpu"):
    """x (B, N, C) zero on padding, mask (B, N) real-first, bias (B, H, N, N)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, N, C, generator=g)
    mask = torch.zeros(B, N, dtype=torch.bool)
    for b, n in enumerate(n_real):
        mask[b, :n] = True
    bias = torch.randn(B, H, N, N, generator=g) * 0.5
    return (x * mask[..., None]).to(device), mask.to(device), bias.to(device)


def call_mixer(mixer, x, mask, bias):
    """``mixer(x, mask, bias)`` with the dense U ``bias``; a local mixer (``pair_mode = "local"``) gets instead
    ``LocalPairs``: neighbours by Delta R with x's first two channels as (eta, phi), U gathered from ``bias``."""
    if getattr(mixer, "pair_mode", "dense") != "local":
        return mixer(x, mask, bias)
    from partx.nn.local_attention import LocalPairs, knn_index

    index = knn_index(x[..., 0], x[..., 1], mask, mixer.k)
    u = None if bias is None else bias.gather(3, index[:, None].expand(-1, bias.size(1), -1, -1))
    return mixer(x, mask, LocalPairs(index, u))


def assert_onnx_matches(mixer, tmp_path, cases=((12, (12, 7, 3)), (16, (16, 2, 9)))):
    """Export ``mixer`` (TorchScript exporter, opset 17, dynamic batch and length) and compare ORT to torch."""
    import onnxruntime as ort

    path = str(tmp_path / "mixer.onnx")
    axes = {"x": {0: "B", 1: "N"}, "mask": {0: "B", 1: "N"}, "bias": {0: "B", 2: "N", 3: "N"}, "y": {0: "B", 1: "N"}}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(mixer, make_batch(N=12), path, opset_version=17, dynamo=False,
                          input_names=["x", "mask", "bias"], output_names=["y"], dynamic_axes=axes)
    mixer.eval()  # export restores the module's previous mode; be explicit
    session = ort.InferenceSession(path)
    for N, n_real in cases:
        x, mask, bias = make_batch(N=N, n_real=n_real)
        (y,) = session.run(None, {"x": x.numpy(), "mask": mask.numpy(), "bias": bias.numpy()})
        with torch.no_grad():
            ref = mixer(x, mask, bias)
        torch.testing.assert_close(torch.from_numpy(y)[mask], ref[mask], atol=1e-5, rtol=1e-5)
