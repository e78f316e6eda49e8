#!/usr/bin/env python3
"""The interpolation points of the one-dimensional Winograd F(4, 7) in Sources/CKernels/winograd.c:
its float32 error, beside the direct sum's, for candidate last pairs of points (the first seven
are 0, ±1, ±2, ±1/2, as in F(4×4, 3×3)'s and most published sets), and F(2, 7) and F(4, 3) for
scale. The matrices are built as winograd.c builds them (Toom-Cook with a point at infinity, in
double); the kernel transform is done in double, the input transform, the point products (sums
over 128 input channels) and the output transform in float32, on non-negative inputs (a ReLU's
output) and on signed ones. Error: the largest |difference| to the float64 correlation over
the largest |output|.

    Tools/.venv/bin/python Benchmarks/winograd_points.py [--tiles 4000]

Needs only numpy."""
import argparse

import numpy as np
from numpy.polynomial import polynomial as P


def matrices(m, r, points):
    """Aᵀ (m × α), G (α × r), Bᵀ (α × α) of F(m, r) for the α − 1 finite `points` and ∞."""
    a = m + r - 1
    assert len(points) == a - 1
    at, g, bt = np.zeros((m, a)), np.zeros((a, r)), np.zeros((a, a))
    for p, f in enumerate(points):
        others = [q for q in points if q != f]
        at[:, p] = [f ** i for i in range(m)]
        g[p] = [f ** j / np.prod([f - q for q in others]) for j in range(r)]
        poly = np.array([1.0])
        for q in others:
            poly = P.polymul(poly, [-q, 1.0])
        bt[p, :len(poly)] = poly
    at[m - 1, a - 1] = 1
    g[a - 1, r - 1] = 1
    poly = np.array([1.0])
    for q in points:
        poly = P.polymul(poly, [-q, 1.0])
    bt[a - 1, :] = poly
    return at, g, bt


def error(m, r, points, channels, outputs, tiles, relu, rng):
    at, g, bt = matrices(m, r, points)
    a = m + r - 1
    d = rng.standard_normal((a, channels, tiles))
    if relu:
        d = np.abs(d)
    w = rng.standard_normal((r, channels, outputs)) * 0.05
    exact = np.zeros((m, outputs, tiles))
    direct = np.zeros((m, outputs, tiles), np.float32)
    d32, w32 = d.astype(np.float32), w.astype(np.float32)
    for i in range(m):
        for j in range(r):
            exact[i] += np.einsum("ck,ct->kt", w[j], d[i + j])
            direct[i] += np.einsum("ck,ct->kt", w32[j], d32[i + j])
    u = np.einsum("pj,jck->pck", g, w).astype(np.float32)
    v = np.einsum("pl,lct->pct", bt.astype(np.float32), d32)
    y = np.einsum("ip,pkt->ikt", at.astype(np.float32), np.einsum("pck,pct->pkt", u, v))
    scale = np.abs(exact).max()
    return np.abs(y - exact).max() / scale, np.abs(direct - exact).max() / scale


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tiles", type=int, default=4000)
    args = ap.parse_args()
    base = [0, 1, -1, 2, -2, 0.5, -0.5]
    pairs = [(3, -3), (0.25, -0.25), (1.5, -1.5), (1.25, -1.25), (0.8, -0.8), (0.75, -1.25), (1.25, -0.8)]
    print(f"{'transform':10} {'last points':>16} {'error, ReLU input':>18} {'signed input':>13} {'direct sum':>11}")
    rows = [("F(4, 7)", 4, 7, base + list(p), p) for p in pairs]
    rows += [("F(2, 7)", 2, 7, base, ()), ("F(4, 3)", 4, 3, [0, 1, -1, 2, -2], ())]
    for name, m, r, points, shown in rows:
        rng = np.random.default_rng(0)
        relu, direct = error(m, r, points, 128, 128, args.tiles, True, rng)
        signed, _ = error(m, r, points, 128, 128, args.tiles, False, rng)
        label = ", ".join(f"{q:g}" for q in shown) or "-"
        print(f"{name:10} {label:>16} {relu:18.2e} {signed:13.2e} {direct:11.2e}")


if __name__ == "__main__":
    main()
