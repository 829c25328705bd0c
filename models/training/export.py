"""Export the trained motion U-Net to ONNX and check it against torch.

    python -m stillflow.models.training.export --ckpt models/runs/motion.pt --out models/stillflow_motion.onnx

The graph takes ``input`` (N, 6, H, W) float32 and returns ``motion`` (N, 2, H, W) float32, with N, H and W
dynamic (H and W must be multiples of 16; core/model.py pads). Opset 17 (onnxruntime 1.31 runs it). The
check runs onnxruntime (CPU provider) and torch on random inputs of two sizes and fails above 1e-4.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from .net import MotionUNet

HERE = Path(__file__).resolve().parent.parent  # models/
OPSET = 17


def load_checkpoint(path, device="cpu"):
    ck = torch.load(path, map_location=device)
    net = MotionUNet(base=ck.get("base", 16))
    net.load_state_dict(ck["state_dict"])
    return net.eval(), ck


def export(net, out):
    x = torch.rand(1, 6, 64, 96)
    torch.onnx.export(
        net,
        (x,),
        str(out),
        dynamo=False,
        opset_version=OPSET,
        input_names=["input"],
        output_names=["motion"],
        dynamic_axes={"input": {0: "n", 2: "h", 3: "w"}, "motion": {0: "n", 2: "h", 3: "w"}},
        do_constant_folding=True,
    )
    import onnx

    m = onnx.load(str(out))
    meta = {
        "stillflow.units": "px/frame at the input resolution; +dx right, +dy down, row 0 top",
        "stillflow.inputs": "rgb sRGB [0,1] (3), mask (1, ones when none), hint field dx,dy px/frame (2)",
        "stillflow.multiple": str(net.multiple),
        "stillflow.working_size": "512",
        "stillflow.license": "GPL-3.0-or-later",
    }
    for k, v in meta.items():
        p = m.metadata_props.add()
        p.key, p.value = k, v
    onnx.checker.check_model(m)
    onnx.save(m, str(out))


def check(net, out, tol=1e-4, seed=0):
    import onnxruntime as ort

    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    g = torch.Generator().manual_seed(seed)
    worst = 0.0
    for shape in [(1, 6, 96, 128), (2, 6, 160, 112)]:
        x = torch.rand(*shape, generator=g)
        x[:, 4:6] = (x[:, 4:6] - 0.5) * 6
        with torch.no_grad():
            ref = net(x).numpy()
        got = sess.run(["motion"], {"input": x.numpy()})[0]
        worst = max(worst, float(np.abs(ref - got).max()))
    if worst > tol:
        raise SystemExit(f"ONNX and torch differ by {worst:.3g} > {tol}")
    return worst


def main(argv=None):
    ap = argparse.ArgumentParser(description="Export the motion model to ONNX and check it against torch.")
    ap.add_argument("--ckpt", default=str(HERE / "runs" / "motion.pt"))
    ap.add_argument("--out", default=str(HERE / "stillflow_motion.onnx"))
    a = ap.parse_args(argv)
    net, ck = load_checkpoint(a.ckpt)
    export(net, a.out)
    worst = check(net, a.out)
    size = Path(a.out).stat().st_size
    print(
        f"wrote {a.out}: {size / 1e6:.2f} MB, opset {OPSET}, step {ck.get('step')}, "
        f"max |onnx - torch| = {worst:.2e}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
