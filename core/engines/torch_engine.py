"""The torch engine: CUDA (or CPU, for tests). Euler steps by gather, splats by ``index_add_`` (atomics)."""

from __future__ import annotations

import numpy as np

from .base import DENSE, EPS
from .reference import SharpReference


class TorchEngine(SharpReference):
    """torch on CUDA (or CPU, for tests): Euler steps by gather, splats by ``index_add_`` (atomics)."""

    def __init__(self, device: str = "cuda"):
        import torch

        self.torch = torch
        self.device = torch.device(device)
        self.name = f"torch-{self.device.type}"

    def asarray(self, a):
        return self.torch.as_tensor(np.ascontiguousarray(a, dtype=np.float32), device=self.device)

    def to_numpy(self, a):
        return a.detach().cpu().numpy()

    def zeros(self, shape):
        return self.torch.zeros(shape, dtype=self.torch.float32, device=self.device)

    def _grid(self, h, w):
        t = self.torch
        gy, gx = t.meshgrid(
            t.arange(h, device=self.device, dtype=t.float32),
            t.arange(w, device=self.device, dtype=t.float32),
            indexing="ij",
        )
        return gx, gy

    def step(self, motion, flow):
        t = self.torch
        h, w = motion.shape[:2]
        gx, gy = self._grid(h, w)
        px = gx + flow[..., 0]
        py = gy + flow[..., 1]
        valid = (px >= 0) & (py >= 0) & (px <= w - 1) & (py <= h - 1)
        pxc = t.where(valid, px, t.zeros_like(px))
        pyc = t.where(valid, py, t.zeros_like(py))
        ix = t.clamp(pxc.floor().long(), max=max(w - 2, 0))
        iy = t.clamp(pyc.floor().long(), max=max(h - 2, 0))
        ax = (pxc - ix).unsqueeze(-1)
        ay = (pyc - iy).unsqueeze(-1)
        ix1 = t.clamp(ix + 1, max=w - 1)
        iy1 = t.clamp(iy + 1, max=h - 1)
        top = motion[iy, ix] * (1 - ax) + motion[iy, ix1] * ax
        bot = motion[iy1, ix] * (1 - ax) + motion[iy1, ix1] * ax
        out = flow + top * (1 - ay) + bot * ay
        return t.where(valid.unsqueeze(-1), out, t.full_like(out, float("nan")))

    def accumulate(self, acc, src, flow, weight, scale):
        t = self.torch
        h, w, c = src.shape
        gx, gy = self._grid(h, w)
        tx = (gx + flow[..., 0]).reshape(-1)
        ty = (gy + flow[..., 1]).reshape(-1)
        ok = t.isfinite(tx) & t.isfinite(ty)
        cols = [src * weight.unsqueeze(-1), weight.unsqueeze(-1)]
        if acc.shape[2] > c + 1:
            cols.append(t.ones_like(weight).unsqueeze(-1))
        k = len(cols) + c - 1
        vals = t.cat(cols, dim=-1).reshape(-1, k) * scale
        tx, ty, vals = tx[ok], ty[ok], vals[ok]
        ix = tx.floor()
        iy = ty.floor()
        ax = tx - ix
        ay = ty - iy
        ix = ix.long()
        iy = iy.long()
        flat = acc.view(-1, k)
        for dy, wy in ((0, 1 - ay), (1, ay)):
            for dx, wx in ((0, 1 - ax), (1, ax)):
                xx, yy = ix + dx, iy + dy
                inside = (xx >= 0) & (xx < w) & (yy >= 0) & (yy < h)
                idx = (yy * w + xx)[inside]
                flat.index_add_(0, idx, vals[inside] * (wy * wx)[inside].unsqueeze(-1))

    def normalise(self, acc):
        den = acc[..., -1]
        holes = den <= EPS
        rgb = acc[..., :-1] / self.torch.where(holes, self.torch.ones_like(den), den).unsqueeze(-1)
        return self.to_numpy(rgb), self.to_numpy(holes)

    def blend(self, acc_f, acc_b, alpha):
        t = self.torch
        fn = t.nn.functional

        def sum3(a):  # (H, W, K) -> 3x3 sums inside the image
            x = a.permute(2, 0, 1)[None]
            return (fn.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=True) * 9.0)[0].permute(1, 2, 0)

        def stream(acc):
            c = acc.shape[2] - 2
            ones = t.ones_like(acc[..., :1])
            sums = sum3(t.cat([acc, ones], dim=-1))
            cov = sums[..., c + 1] / sums[..., c + 2]
            d = acc[..., c]
            has = d > EPS
            own_rgb = acc[..., :c] / t.where(has, d, t.ones_like(d)).unsqueeze(-1)
            d3 = sums[..., c]
            rgb3 = sums[..., :c] / t.where(d3 > EPS, d3, t.ones_like(d3)).unsqueeze(-1)
            share = t.clamp(cov / DENSE, max=1.0)
            own = t.where(has, share, t.zeros_like(cov)).unsqueeze(-1)
            dense = (cov >= DENSE) & has
            rgb = t.where(dense.unsqueeze(-1), own_rgb, (1.0 - own) * rgb3 + own * own_rgb)
            weight = t.where(dense, t.ones_like(cov), t.where(d3 > EPS, share, t.zeros_like(cov)))
            return weight, rgb

        wf, rgb_f = stream(acc_f)
        wb, rgb_b = stream(acc_b)
        af, ab = alpha * wf, (1.0 - alpha) * wb
        tot = af + ab
        holes = tot <= 0
        rgb = (af.unsqueeze(-1) * rgb_f + ab.unsqueeze(-1) * rgb_b) / t.where(holes, t.ones_like(tot), tot).unsqueeze(-1)
        rgb[holes] = float("nan")
        return self.to_numpy(rgb), self.to_numpy(holes)
