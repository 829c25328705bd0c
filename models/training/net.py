"""Stillflow's motion network: a compact U-Net (torch) from one photo (+ optional mask and hint field) to M.

Input  (N, 6, H, W): RGB sRGB in [0, 1], motion mask (ones when none), dense hint field dx, dy in px/frame
                     (zeros when none).
Output (N, 2, H, W): motion field dx, dy in px/frame at the input resolution (+dy = down, row 0 = top).

H and W must be multiples of ``MotionUNet.multiple`` (16); ``predict_padded`` pads any size (edge
replication) and crops the result, and so does core/model.py around the ONNX export.

Two heads read the decoder's full-resolution features:
- ``head`` (the motion head): a correction ``c`` and a hint gate ``g``; without hints, M = c.
- ``hint_head`` (the hint head, used only when the picture has hints): a gate change ``dg``, a log speed
  ratio ``u``, a rotation ``v``, a correction ``c2`` and a drop ``d``, so that
  ``M = sigmoid(g + dg + k * given * mask) * exp(u) * R(v) hint + (1 - sigmoid(d - 6)) * c + c2``; the drop
  ``d`` lets the arrows override the motion head's prior c where they disagree with it.
  Rotating and scaling the user's vectors (rather than adding to them) keeps the result proportional to the
  hints, as the speed scaling of training asks for.
"Mask given" and "hints given" are derived inside the net, not passed in: ``given = 1 - min(mask)`` over each
picture (0 when the mask is all ones, i.e. no mask), ``hinted = 1`` when any hint vector is non-zero. Without
``given`` the net cannot tell "no mask" (where the hint field spreads over land that must stay still) from
"a mask over this region" (where the hints should pass through) deep inside a large mask. Because the hint
head's terms vanish without hints, it can be trained with the rest of the net frozen: the motion the net
predicts without hints does not change (models/training/train.py ``--freeze-backbone``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

HINT_SCALE = 0.5  # hints and output are scaled so typical speeds (0.5..5 px/frame) are O(1) inside the net


class _Block(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.c2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.act = nn.LeakyReLU(0.1)

    def forward(self, x):
        return self.act(self.c2(self.act(self.c1(x))))


class MotionUNet(nn.Module):
    multiple = 16

    def __init__(self, base=24, depth=4):
        super().__init__()
        self.multiple = 2**depth
        ch = [base * min(2**i, 8) for i in range(depth + 1)]
        self.stem = _Block(6, ch[0])
        self.down = nn.ModuleList([nn.Conv2d(ch[i], ch[i], 3, stride=2, padding=1) for i in range(depth)])
        self.enc = nn.ModuleList([_Block(ch[i], ch[i + 1]) for i in range(depth)])
        self.up = nn.ModuleList([nn.ConvTranspose2d(ch[i + 1], ch[i], 2, stride=2) for i in range(depth)])
        self.dec = nn.ModuleList([_Block(2 * ch[i], ch[i]) for i in range(depth)])
        # the head also sees the raw mask and hint channels, and outputs a correction (2) and a gate (1):
        # M = sigmoid(gate) * hint + correction, so passing the hints through where things move is easy
        self.head = nn.Sequential(
            nn.Conv2d(ch[0] + 3, ch[0], 3, padding=1), nn.LeakyReLU(0.1), nn.Conv2d(ch[0], 3, 3, padding=1)
        )
        self.hint_head = nn.Sequential(
            nn.Conv2d(ch[0] + 4, ch[0], 3, padding=1),
            nn.LeakyReLU(0.1),
            nn.Conv2d(ch[0], ch[0], 3, padding=2, dilation=2),
            nn.LeakyReLU(0.1),
            nn.Conv2d(ch[0], 6, 3, padding=1),
        )
        nn.init.zeros_(self.hint_head[-1].weight)  # starts as "pass the hints through": dg = u = v = c2 = 0
        nn.init.zeros_(self.hint_head[-1].bias)
        self.gate_given = nn.Parameter(torch.tensor(2.0))  # gate logit added inside a given mask
        self.act = nn.LeakyReLU(0.1)
        self.depth = depth

    def backbone_parameters(self):
        """Everything but the hint head: what ``--freeze-backbone`` keeps fixed."""
        hint = {id(p) for p in self.hint_parameters()}
        return [p for p in self.parameters() if id(p) not in hint]

    def hint_parameters(self):
        return [*self.hint_head.parameters(), self.gate_given]

    def forward(self, x):
        rgb = x[:, 0:3] - 0.5
        mask = x[:, 3:4]
        hint = x[:, 4:6] * HINT_SCALE
        z = torch.cat([rgb, mask, hint], 1)
        feats = [self.stem(z)]
        for i in range(self.depth):
            feats.append(self.enc[i](self.act(self.down[i](feats[-1]))))
        y = feats[-1]
        for i in reversed(range(self.depth)):
            y = self.dec[i](torch.cat([self.act(self.up[i](y)), feats[i]], 1))
        out = self.head(torch.cat([y, mask, hint], 1))
        given = (1.0 - torch.amin(mask, dim=(2, 3), keepdim=True)).expand_as(mask)
        hinted = (torch.amax(hint.abs(), dim=(1, 2, 3), keepdim=True) > 0).to(hint.dtype)
        h = self.hint_head(torch.cat([y, mask, hint, given], 1)) * hinted
        gate = torch.sigmoid(out[:, 2:3] + h[:, 0:1] + self.gate_given * hinted * given * mask)
        k = gate * torch.exp(h[:, 1:2].clamp(-3.0, 3.0))
        cos, sin = k * torch.cos(h[:, 2:3]), k * torch.sin(h[:, 2:3])
        hx, hy = hint[:, 0:1], hint[:, 1:2]
        turned = torch.cat([cos * hx - sin * hy, sin * hx + cos * hy], 1)
        # the motion head's own guess c is the picture's prior (waves come toward the viewer, ...): where the
        # arrows say otherwise the hint head drops it (drop = 0 without hints; about 0 at initialisation)
        keep = 1.0 - hinted * torch.sigmoid(h[:, 5:6] - 6.0)
        return (turned + keep * out[:, 0:2] + h[:, 3:5]) / HINT_SCALE


def pad_to_multiple(x, m):
    h, w = x.shape[-2:]
    ph, pw = (-h) % m, (-w) % m
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    return x, h, w


@torch.no_grad()
def predict_padded(net, x):
    """Run the net on any H, W: replicate-pad to a multiple of 16 on the bottom/right, then crop."""
    xp, h, w = pad_to_multiple(x, net.multiple)
    return net(xp)[..., :h, :w]


def count_params(net):
    return sum(p.numel() for p in net.parameters())


if __name__ == "__main__":
    n = MotionUNet()
    print(count_params(n), "parameters,", count_params(n) * 4 / 1e6, "MB float32")
