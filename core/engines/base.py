"""The engine interface: what every splatting engine offers, on its own array type.

`core.render` is written once against it; `reference.NumpyEngine` is the plain numpy reference every engine
is tested against (`tests/test_core_engine.py`). Flows hold NaN for particles that left the image.
"""

from __future__ import annotations

from typing import Any, Protocol

EPS = 1e-6  # a pixel with less splatted weight than this is a hole
DENSE = 0.98  # see cpu_kernels.DENSE


class Engine(Protocol):
    name: str  # "numpy", "cpu-numba", "torch-cuda", ...
    device: str  # "cpu" or "cuda"

    def asarray(self, a) -> Any:
        """A numpy array as the engine's array (float32)."""

    def to_numpy(self, a) -> Any: ...

    def zeros(self, shape: tuple[int, ...]) -> Any: ...

    def step(self, motion, flow) -> Any:
        """One Euler step: flow + motion(x + flow), bilinear; particles leaving the image become NaN."""

    def accumulate(self, acc, src, flow, weight, scale: float) -> None:
        """Bilinear forward splat of scale * weight * src into acc[..., :C] and of scale * weight into
        acc[..., C]; with one channel more (C + 2), the bilinear tap count (coverage) into acc[..., C + 1]."""

    def normalise(self, acc) -> tuple[Any, Any]:
        """One normalisation of one accumulator: (rgb numpy (H, W, C) with NaN holes, holes bool (H, W))."""

    def blend(self, acc_f, acc_b, alpha: float) -> tuple[Any, Any]:
        """The two streams (each (H, W, C + 2)) blended by alpha times their smoothed coverage:
        (rgb numpy (H, W, C) with NaN holes, holes)."""

    # The detail-keeping ("sharp") renderer; numpy in and out (reference.py explains the path).
    def sharp_source(self, img) -> Any:
        """What `sharp_stream` samples: the photo split into a smooth base and its finest detail."""

    def accumulate_coords(self, acc, flow, weight) -> None:
        """``accumulate`` (scale 1) of each pixel's own coordinates (x, y): a coordinate stream (H, W, 4)."""

    def sharp_stream(self, acc, source, still) -> tuple[Any, Any]:
        """A coordinate stream (H, W, 4) -> (the photo sampled at its mean source positions, its finest
        detail kept where the stream is not stretched, (H, W, 3); its share (H, W)); clears ``still``
        (bool (H, W)) where the stream moves a pixel."""

    def blend_detail(self, a_img, b_img, wa, wb, still=None, photo=None) -> Any:
        """Two renderings blended by weights wa, wb with their detail's contrast kept; with ``still``, the
        photo exactly there and everything clipped to [0, 1]."""

    # core.render.DetailMatch's two full-size passes (numpy in and out).
    def detail_blocks(self, rgb, where, k: int) -> Any:
        """The squared Laplacian of the luma of ``rgb`` times ``where`` (H, W), averaged over k x k blocks:
        float32 (ceil(H / k), ceil(W / k))."""

    def detail_apply(self, rgb, gain, where, k: int) -> None:
        """``rgb`` (H, W, 3) in place: its luma's 3x3 high-pass times (``gain`` on the block grid, bilinearly
        up, times ``where``) added, all clipped to [0, 1]."""
