"""spaces.cpu_layout: the layout-switching depthwise conv and max pool compute what the stock ops compute."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import onnx
import pytest
import torch
import torch.nn.functional as F

from sdnas_deploy.spaces import cpu_layout
from sdnas_deploy.spaces.cpu_layout import DepthwiseConv2d, MaxPool2d
from sdnas_deploy.spaces.darts.ops import OPS
from sdnas_deploy.spaces.darts.supernet import SearchNetwork

# (kernel, stride, dilation): every depthwise conv of the DARTS ops (sep 3x3/5x5, dil 3x3/5x5; stride 1 and 2).
DEPTHWISE = [(3, 1, 1), (3, 2, 1), (5, 1, 1), (5, 2, 1), (3, 1, 2), (3, 2, 2), (5, 1, 2), (5, 2, 2), (7, 1, 1)]


def _grads(module: torch.nn.Module, x: torch.Tensor, g: torch.Tensor) -> tuple[torch.Tensor, ...]:
    x = x.clone().requires_grad_()
    out = module(x)
    out.backward(g)
    return (out.detach(), x.grad, *[p.grad.clone() for p in module.parameters()])


@pytest.mark.parametrize("size", [9, 10, 12, 3])  # 12, 10, 9: polyphase with and without padding; 3: too small
@pytest.mark.parametrize("kernel,stride,dilation", DEPTHWISE)
def test_depthwise_matches_stock_conv(kernel: int, stride: int, dilation: int, size: int) -> None:
    torch.manual_seed(0)
    conv = DepthwiseConv2d(6, kernel, stride=stride, padding=dilation * (kernel - 1) // 2, dilation=dilation)
    stock = torch.nn.Conv2d(6, 6, kernel, stride, dilation * (kernel - 1) // 2, dilation, groups=6, bias=False)
    stock.load_state_dict(conv.state_dict())  # same parameters, same state dict keys
    x = torch.randn(4, 6, size, size)  # odd size: stride 2 rounds up
    g = torch.randn_like(conv(x))
    expected = ("subsample" if dilation > 1 and stride == dilation else "polyphase" if dilation > 1 else
                "channels-last weight grad" if cpu_layout.channels_last_weight_grad(kernel, dilation) else "stock")
    assert conv.path == expected
    for mine, ref in zip(_grads(conv, x, g), _grads(stock, x, g)):
        torch.testing.assert_close(mine, ref, rtol=1e-5, atol=1e-5)
    for p in (*conv.parameters(), *stock.parameters()):
        p.grad = None


@pytest.mark.parametrize("kernel,stride,dilation", [(5, 1, 1), (3, 1, 2), (5, 2, 2)])
def test_depthwise_double_backward_matches_stock(kernel: int, stride: int, dilation: int) -> None:
    """The α Hessian (nas.sharpness) differentiates through the conv's backward, on every path."""
    torch.manual_seed(0)
    conv = DepthwiseConv2d(4, kernel, stride, dilation * (kernel - 1) // 2, dilation)
    x = torch.randn(2, 4, 8, 8, requires_grad=True)

    def hvp(fn) -> tuple[torch.Tensor, ...]:
        loss = fn(x).pow(2).sum()
        gx, gw = torch.autograd.grad(loss, (x, conv.weight), create_graph=True)
        return torch.autograd.grad(gx.sum() + gw.pow(2).sum(), (x, conv.weight))

    mine = hvp(conv)
    with cpu_layout.disabled():
        ref = hvp(conv)
    for a, b in zip(mine, ref):  # sums of many products in another order: compare relative to the tensor's scale
        assert (a - b).abs().max() <= 1e-5 * b.abs().max()


@pytest.mark.parametrize("stride,ceil_mode,size", [(1, False, 8), (2, False, 9), (2, True, 9)])
def test_maxpool_matches_stock(stride: int, ceil_mode: bool, size: int) -> None:
    torch.manual_seed(0)
    pool = MaxPool2d(3, stride=stride, padding=1, ceil_mode=ceil_mode)
    stock = torch.nn.MaxPool2d(3, stride=stride, padding=1, ceil_mode=ceil_mode)
    x = torch.randn(3, 5, size, size)
    g = torch.randn_like(stock(x))
    out, grad = _grads(pool, x, g)[:2]
    ref_out, ref_grad = _grads(stock, x, g)[:2]
    assert out.is_contiguous()  # the caller's layout comes back
    torch.testing.assert_close(out, ref_out, rtol=0, atol=0)
    torch.testing.assert_close(grad, ref_grad, rtol=0, atol=0)


def test_supernet_gradients_match_stock_ops() -> None:
    """A whole DARTS supernet step: every parameter's gradient as with the stock ops."""
    torch.manual_seed(0)
    net = SearchNetwork(4, 10, 3, in_channels=1)
    x, y = torch.randn(8, 1, 12, 12), torch.randint(0, 10, (8,))

    def grads() -> list[torch.Tensor]:
        net.zero_grad(set_to_none=True)
        F.cross_entropy(net(x), y).backward()
        return [p.grad.clone() for p in net.parameters()]

    mine = grads()
    with cpu_layout.disabled():
        ref = grads()
    assert len(mine) == len(ref) > 0
    for a, b in zip(mine, ref):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_onnx_export_sees_only_stock_ops() -> None:
    """Exporting (with gradients enabled) records Conv and MaxPool nodes, no Python op."""
    model = torch.nn.Sequential(OPS["sep_conv_5x5"](4, 1, True), OPS["max_pool_3x3"](4, 1, True)).eval()
    buffer = io.BytesIO()
    torch.onnx.export(model, (torch.randn(1, 4, 8, 8),), buffer, dynamo=False, opset_version=17)
    ops = {node.op_type for node in onnx.load_from_string(buffer.getvalue()).graph.node}
    assert {"Conv", "MaxPool"} <= ops and not any("Python" in op for op in ops)


def test_disabled_and_environment_switch() -> None:
    conv = DepthwiseConv2d(2, 5, padding=2)
    x = torch.randn(1, 2, 6, 6)
    assert conv(x).grad_fn.name() == "_DepthwiseConvBackward"
    with cpu_layout.disabled():
        assert conv(x).grad_fn.name() == "ConvolutionBackward0"
    assert conv(x).grad_fn.name() == "_DepthwiseConvBackward"
    with torch.no_grad():
        assert conv(x).grad_fn is None
    code = "from sdnas_deploy.spaces import cpu_layout; print(cpu_layout._state['enabled'])"
    env = {**os.environ, "SDNAS_STOCK_CPU_OPS": "1"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert done.stdout.strip() == "False"
