"""Would fusing a DARTS edge's candidate ops make the supernet step faster on CPU? (issue 11 evidence)

Times one supernet edge (``MixedOp``, stride 1) forward + backward at batch 64 as built, and as a fused version
computing the same numbers (one shared ReLU, the four 1x1 convs as one grouped conv, one BatchNorm per stage over
the stacked outputs). Prints the ratio per shape and writes bench/results/edge_fusion.json.

    .venv/bin/python bench/edge_fusion.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sdnas_deploy.io_utils import atomic_write_json  # noqa: E402
from sdnas_deploy.runtime.fingerprint import environment_fingerprint  # noqa: E402
from sdnas_deploy.spaces.darts.supernet import MixedOp  # noqa: E402

torch.set_num_threads(2)
torch.manual_seed(0)

def bench(fn, n: int = 20) -> float:
    for _ in range(3): fn()
    t=time.perf_counter()
    for _ in range(n): fn()
    return (time.perf_counter()-t)/n*1000
class Fused(torch.nn.Module):
    """Same math as MixedOp (stride 1): shared ReLU, grouped 1x1 convs and one BN per stage."""
    def __init__(self, m):
        super().__init__(); self.m = m
    def forward(self, x, w):
        ops = self.m._ops  # none, max, avg, skip, sep3, sep5, dil3, dil5
        C = x.shape[1]
        r = F.relu(x)
        sep3, sep5, dil3, dil5 = ops[4].op, ops[5].op, ops[6], ops[7]
        d = [sep3[0].op[1](r), sep5[0].op[1](r), dil3.op[1](r), dil5.op[1](r)]
        pw = torch.cat([sep3[0].op[2].weight, sep5[0].op[2].weight, dil3.op[2].weight, dil5.op[2].weight])
        y = F.conv2d(torch.cat(d, 1), pw, groups=4)
        y = F.batch_norm(y, None, None, training=True)
        s3, s5, d3, d5 = y.split(C, 1)
        r2 = F.relu(torch.cat([s3, s5], 1))
        e = [sep3[1].op[1](r2[:, :C]), sep5[1].op[1](r2[:, C:])]
        pw2 = torch.cat([sep3[1].op[2].weight, sep5[1].op[2].weight])
        z = F.batch_norm(F.conv2d(torch.cat(e, 1), pw2, groups=2), None, None, training=True)
        z3, z5 = z.split(C, 1)
        pools = F.batch_norm(torch.cat([F.max_pool2d(x, 3, 1, 1), F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)], 1), None, None, training=True)
        mp, ap = pools.split(C, 1)
        return w[1]*mp + w[2]*ap + w[3]*x + w[4]*z3 + w[5]*z5 + w[6]*d3 + w[7]*d5
rows = []
for C, H in ((8, 16), (16, 8), (16, 32)):
    m = MixedOp(C, 1).train()
    f = Fused(m)
    x = torch.randn(64, C, H, H, requires_grad=True)
    w = torch.softmax(torch.randn(8), 0)
    with torch.no_grad():
        diff = float((m(x, w) - f(x, w)).abs().max())
    t0 = bench(lambda: m(x, w).sum().backward())
    t1 = bench(lambda: f(x, w).sum().backward())
    rows.append({"channels": C, "size": H, "batch": 64, "mixed_ms": t0, "fused_ms": t1, "speedup": t0 / t1,
                 "max_abs_diff": diff})
    print(f"C={C:3d} {H:3d}x{H:<3d} as built {t0:7.2f} ms  fused {t1:7.2f} ms  speedup {t0 / t1:.2f}x  max|diff| {diff:.1e}")
path = atomic_write_json(Path(__file__).parent / "results" / "edge_fusion.json",
                         {"rows": rows, "fingerprint": environment_fingerprint(2)})
print(f"wrote {path}")
