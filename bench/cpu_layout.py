"""Which CPU layout is faster for the supernet's depthwise-conv gradients and max pools, and what the switch buys.

Part 1 (ops): for every depthwise conv and max pool shape of the DARTS demo supernet (batch 64, 16x16 input,
8 channels) and for MBConv-sized depthwise convs, the median time of
- the depthwise conv's forward + backward: stock (oneDNN on NCHW), with the weight gradient always computed on
  channels-last copies, and as ``cpu_layout.DepthwiseConv2d`` does it (its ``path``: channels-last weight
  gradient for 5x5/7x7, dense convs of the subsampled input or of the phase images for dilated convs, else stock);
- max pooling forward + backward on NCHW, against on a channels-last copy (copies included).
Part 2 (network): forward + backward of whole DARTS supernets with ``spaces.cpu_layout`` on and off, interleaved,
and the largest gradient difference between the two.

One torch thread unless ``--threads``; medians of interleaved repeats (this VM is noisy: quote ratios).
Prints tables and writes bench/results/cpu_layout.json.

    .venv/bin/python bench/cpu_layout.py [--repeats 15] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sdnas_deploy.io_utils import atomic_write_json  # noqa: E402
from sdnas_deploy.runtime.fingerprint import environment_fingerprint  # noqa: E402
from sdnas_deploy.spaces import cpu_layout  # noqa: E402
from sdnas_deploy.spaces.cpu_layout import DepthwiseConv2d, _DepthwiseConv  # noqa: E402
from sdnas_deploy.spaces.darts.supernet import SearchNetwork  # noqa: E402

CL = torch.channels_last
# (channels, size, kernel, stride, dilation) of the demo supernet's depthwise convs (5 cells x 8 channels)
DEPTHWISE = [(c, s, k, 1, d) for c, s in ((8, 16), (16, 8), (32, 4)) for k, d in ((3, 1), (5, 1), (3, 2), (5, 2))]
DEPTHWISE += [(16, 16, 3, 2, 1), (16, 16, 5, 2, 1), (32, 8, 3, 2, 1), (32, 8, 5, 2, 1), (16, 16, 3, 2, 2),
              (16, 16, 5, 2, 2), (32, 8, 3, 2, 2), (32, 8, 5, 2, 2)]
# and MBConv depthwise convs (FBNet / ProxylessNAS small layouts: expanded widths, 3x3 to 7x7)
DEPTHWISE += [(c, s, k, 1, 1) for c, s in ((48, 16), (96, 8), (192, 4)) for k in (3, 5, 7)] + [(48, 16, 7, 2, 1)]
POOLS = [(8, 16, 1), (16, 8, 1), (32, 4, 1), (16, 16, 2), (32, 8, 2)]
NETWORKS = {"demo (5 cells x 8 ch, 16x16x1)": (8, 5, 1, 16), "reference cell width (8 cells x 16 ch, 32x32x3)": (16, 8, 3, 32)}


def interleaved(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median ms of each function, run in turn ``repeats`` times after one warm-up each."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - start) * 1000.0)
    return {name: statistics.median(values) for name, values in times.items()}


def depthwise_rows(batch: int, repeats: int) -> list[dict]:
    """Forward + backward of each depthwise conv: stock, weight gradient always channels-last, and sdnas's choice."""
    rows = []
    for channels, size, kernel, stride, dilation in DEPTHWISE:
        pad = dilation * (kernel - 1) // 2
        module = DepthwiseConv2d(channels, kernel, stride, pad, dilation)
        x = torch.randn(batch, channels, size, size, requires_grad=True)
        g = torch.randn_like(F.conv2d(x, module.weight, None, stride, pad, dilation, channels))
        conf = ((stride,) * 2, (pad,) * 2, (dilation,) * 2, channels)

        def stock() -> None:
            with cpu_layout.disabled():
                torch.autograd.grad(module(x), (x, module.weight), g)

        ms = interleaved({
            "stock": stock,
            "channels_last_weight_grad": lambda: torch.autograd.grad(
                _DepthwiseConv.apply(x, module.weight, *conf), (x, module.weight), g),
            "sdnas": lambda: torch.autograd.grad(module(x), (x, module.weight), g),
        }, repeats)
        rows.append({"channels": channels, "size": size, "kernel": kernel, "stride": stride, "dilation": dilation,
                     **{f"{name}_ms": value for name, value in ms.items()}, "speedup": ms["stock"] / ms["sdnas"],
                     "sdnas_path": "stock (polyphase needs d*k pixels)" if module.path == "polyphase"
                     and size < dilation * kernel else module.path})
    return rows


def pool_rows(batch: int, repeats: int) -> list[dict]:
    rows = []
    for channels, size, stride in POOLS:
        x = torch.randn(batch, channels, size, size, requires_grad=True)

        def run(layout: torch.memory_format) -> None:
            F.max_pool2d(x.contiguous(memory_format=layout), 3, stride, 1).contiguous().sum().backward()

        ms = interleaved({"nchw": lambda: run(torch.contiguous_format), "switched": lambda: run(CL)}, repeats)
        rows.append({"channels": channels, "size": size, "stride": stride, "nchw_ms": ms["nchw"],
                     "switched_ms": ms["switched"], "speedup": ms["nchw"] / ms["switched"]})
    return rows


def network_rows(batch: int, repeats: int) -> list[dict]:
    rows = []
    for label, (width, layers, in_channels, size) in NETWORKS.items():
        torch.manual_seed(0)
        net = SearchNetwork(width, 10, layers, in_channels=in_channels)
        x, y = torch.randn(batch, in_channels, size, size), torch.randint(0, 10, (batch,))

        def step() -> list[torch.Tensor]:
            net.zero_grad(set_to_none=True)
            F.cross_entropy(net(x), y).backward()
            return [p.grad for p in net.parameters()]

        def stock() -> list[torch.Tensor]:
            with cpu_layout.disabled():
                return step()

        diff = max((a - b).abs().max().item() for a, b in zip([g.clone() for g in step()], stock()))
        ms = interleaved({"stock": stock, "switched": step}, repeats)
        rows.append({"network": label, "batch": batch, "stock_ms": ms["stock"], "switched_ms": ms["switched"],
                     "speedup": ms["stock"] / ms["switched"], "max_grad_diff": diff})
        print(f"  {label}: {ms['stock']:.0f} -> {ms['switched']:.0f} ms ({ms['stock'] / ms['switched']:.2f}x)", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--network-repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "cpu_layout.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    dw = depthwise_rows(args.batch, args.repeats)
    print("depthwise conv forward+backward (ms): C size k stride dil | stock | always channels-last weight grad | "
          "sdnas | speedup | sdnas path")
    for r in dw:
        print(f"  {r['channels']:3d} {r['size']:3d} {r['kernel']} {r['stride']} {r['dilation']} | {r['stock_ms']:7.3f} | "
              f"{r['channels_last_weight_grad_ms']:7.3f} | {r['sdnas_ms']:7.3f} | {r['speedup']:5.2f}x | {r['sdnas_path']}")
    pools = pool_rows(args.batch, args.repeats)
    print("max pool 3x3 forward+backward (ms): C size stride | NCHW | channels-last copy | speedup")
    for r in pools:
        print(f"  {r['channels']:3d} {r['size']:3d} {r['stride']} | {r['nchw_ms']:7.3f} | {r['switched_ms']:7.3f} | {r['speedup']:5.2f}x")
    print("supernet forward+backward, cpu_layout off -> on:")
    nets = network_rows(args.batch, args.network_repeats)
    atomic_write_json(args.out, {"benchmark": "cpu_layout", "date": time.strftime("%Y-%m-%d"), "threads": args.threads,
                                 "repeats": args.repeats, "environment": environment_fingerprint(),
                                 "depthwise_backward": dw, "max_pool": pools, "networks": nets})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
