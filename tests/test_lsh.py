"""partx.nn.lsh: E2LSH, OR & AND, bucketing by sort, blocks, masks."""

import math

import pytest
import torch

from partx.nn.lsh import (
    e2lsh_codes,
    e2lsh_params,
    hept_region_counts,
    inverse_permutation,
    lexsort,
    lsh_block_attention,
    lsh_sort_keys,
    quantile_regions,
    region_codes,
)


def test_identical_points_share_codes_and_sit_next_to_each_other():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 200, 6, generator=g)
    x = torch.cat([x, x[:, :20]], dim=1)  # 20 exact duplicates
    a, b = e2lsh_params(6, 4, 0.5, seed=3, dtype=torch.float32)
    codes = e2lsh_codes(x, a, b, 0.5)
    assert torch.equal(codes[:, 200:], codes[:, :20])
    proj = (x @ a)[..., 0][:, None, None, :]  # (B, T=1, H=1, N)
    mask = torch.ones(1, 220, dtype=torch.bool)
    counts = torch.tensor([[3.0], [2.0]])
    rc = region_codes(x, counts, mask)[:, None]  # (B, 1, 1, N)
    qk, _ = lsh_sort_keys(proj, proj, rc, mask)
    pos = inverse_permutation(qk.argsort(-1))[0, 0, 0]
    assert ((pos[200:] - pos[:20]).abs() == 1).all()  # equal keys: adjacent after the sort


def test_near_points_collide_far_points_rarely():
    w = 1.0
    a, b = e2lsh_params(2, 3, w, seed=1)
    g = torch.Generator().manual_seed(2)
    x = torch.randn(5000, 2, generator=g, dtype=torch.float64) * 20
    direction = torch.nn.functional.normalize(torch.randn(5000, 2, generator=g, dtype=torch.float64), dim=-1)
    same = lambda y: (e2lsh_codes(x, a, b, w) == e2lsh_codes(y, a, b, w)).all(-1).double().mean().item()  # noqa: E731
    assert same(x + 0.01 * w * direction) > 0.95
    assert same(x + 10 * w * direction) < 0.02


def test_inverse_permutation_and_lexsort():
    g = torch.Generator().manual_seed(0)
    perm = torch.stack([torch.randperm(50, generator=g) for _ in range(3)])
    inv = inverse_permutation(perm)
    x = torch.randn(3, 50, generator=g)
    assert torch.equal(x.gather(1, perm).gather(1, inv), x)
    k1, k2 = torch.randint(0, 3, (3, 50), generator=g).float(), torch.randn(3, 50, generator=g)
    mask = torch.rand(3, 50, generator=g) > 0.3
    p = lexsort([k1, k2], mask)
    m, a, b = mask.gather(1, p), k1.gather(1, p), k2.gather(1, p)
    n = mask.sum(1)
    for i in range(3):
        assert m[i, : n[i]].all() and not m[i, n[i] :].any()
        real = list(zip(a[i, : n[i]].tolist(), b[i, : n[i]].tolist()))
        assert real == sorted(real)


def test_quantile_regions_use_real_points_only():
    g = torch.Generator().manual_seed(0)
    v = torch.randn(1, 30, generator=g)
    mask = torch.ones(1, 30, dtype=torch.bool)
    r = quantile_regions(v, torch.tensor([3.0, 2.5]), mask)
    assert r.shape == (1, 2, 30)
    assert sorted(r[0, 0].bincount().tolist()[1:]) == [10, 10, 10]  # equal-count slices, numbered from 1
    assert r[0, 1].max() == 3  # 2.5 slices -> ceil(30/2.5) = 12 per slice -> 12, 12, 6
    vp = torch.cat([v, torch.full((1, 10), -100.0)], 1)  # padding with extreme values
    mp = torch.cat([mask, torch.zeros(1, 10, dtype=torch.bool)], 1)
    rp = quantile_regions(vp, torch.tensor([3.0, 2.5]), mp)
    assert torch.equal(rp[..., :30], r) and (rp[..., 30:] == 0).all()


def test_or_and_counts():
    torch.manual_seed(0)
    counts = hept_region_counts(150, n_tables=3, n_heads=8)
    assert counts.shape == (3, 2, 8)  # HEPT's ``regions`` layout (tables, eta/phi, heads)
    prod = counts.prod(1)
    assert ((prod - 150).abs() / 150 < 0.15).all()  # AND regions per table ~ num_regions (rounded to thirds)
    g = torch.Generator().manual_seed(1)
    coords = torch.randn(1, 3000, 2, generator=g)
    mask = torch.ones(1, 3000, dtype=torch.bool)
    cc = torch.tensor([[4.0, 5.0], [3.0, 2.0]])  # 2 tables: 4 x 3 and 5 x 2 regions
    codes = region_codes(coords, cc, mask)
    assert [len(codes[0, t].unique()) for t in range(2)] == [12, 10]


def _dense_rbf(q, k, v, mask):
    d2 = ((q[..., :, None, :] - k[..., None, :, :]) ** 2).sum(-1)
    w = torch.exp(-0.5 * d2) * mask[:, None, None, :]
    return (w @ v) / (w.sum(-1, keepdim=True) + 1e-20)


@pytest.mark.parametrize("tables", [1, 3])
def test_one_block_is_dense_rbf_attention(tables):
    """With block_size >= N every table holds one block: OR over tables gives exact dense RBF attention."""
    g = torch.Generator().manual_seed(0)
    B, H, N, D = 2, 2, 23, 4
    q, k, v = (torch.randn(B, H, N, D, generator=g) * 0.5 for _ in range(3))
    mask = torch.ones(B, N, dtype=torch.bool)
    mask[1, 15:] = False
    keys = torch.randn(B, tables, H, N, generator=g)
    keys = keys.masked_fill(~mask[:, None, None, :], math.inf)
    out = lsh_block_attention(q, k, v, keys, keys.flip(-1), mask, block_size=32)
    ref = _dense_rbf(q, k, v, mask) * mask[:, None, :, None]
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=1e-5)


def test_block_attention_ignores_padding_and_other_events():
    g = torch.Generator().manual_seed(0)
    B, H, N, D = 2, 2, 40, 3
    q, k, v = (torch.randn(B, H, N, D, generator=g) for _ in range(3))
    mask = torch.ones(B, N, dtype=torch.bool)
    mask[0, 30:] = False
    qp = torch.randn(B, 3, H, N, generator=g)
    kp = torch.randn(B, 3, H, N, generator=g)
    qk, kk = lsh_sort_keys(qp, kp, None, mask)
    out = lsh_block_attention(q, k, v, qk, kk, mask, block_size=8)
    assert (out[0, :, 30:] == 0).all()
    # garbage in padded slots of event 0, extra padding, and a changed event 1: event 0's real outputs stay
    q2, k2, v2 = (torch.cat([t.clone(), torch.randn(B, H, 9, D, generator=g)], 2) for t in (q, k, v))
    for t in (q2, k2, v2):
        t[0, :, 30:] = 1e3
        t[1] = torch.randn_like(t[1])
    m2 = torch.cat([mask, torch.zeros(B, 9, dtype=torch.bool)], 1)
    m2[1, :] = True
    qp2, kp2 = (torch.cat([t, torch.randn(B, 3, H, 9, generator=g)], -1) for t in (qp, kp))
    qk2, kk2 = lsh_sort_keys(qp2, kp2, None, m2)
    out2 = lsh_block_attention(q2, k2, v2, qk2, kk2, m2, block_size=8)
    torch.testing.assert_close(out2[0, :, :30], out[0, :, :30])
