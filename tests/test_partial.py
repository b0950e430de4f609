"""PC-DARTS options of the cell spaces: channel shuffle, partial mixtures, edge normalization, validation."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sdnas_deploy.errors import BadInputError
from sdnas_deploy.nas.config import SearchConfig
from sdnas_deploy.nas.searcher import run_search
from sdnas_deploy.spaces import get_space
from sdnas_deploy.spaces.darts.supernet import SearchNetwork, discretized_weights
from sdnas_deploy.spaces.partial import PartialMixture, channel_shuffle, node_softmax


def test_channel_shuffle_interleaves_groups() -> None:
    x = torch.arange(8.0).view(1, 8, 1, 1)
    out = channel_shuffle(x, 4).flatten().tolist()
    assert out == [0.0, 2.0, 4.0, 6.0, 1.0, 3.0, 5.0, 7.0]  # group g's channel i -> position i*groups + g
    assert torch.equal(channel_shuffle(x, 1), x)


class _Double(torch.nn.Module):
    """A 'mixed op' that doubles its input (stride 1) or pools it (stride 2), to see what passes through it."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return 2 * x if self.stride == 1 else torch.nn.functional.max_pool2d(x, 2, 2, ceil_mode=True)


def test_partial_mixture_sends_one_kth_through_the_op_and_shuffles() -> None:
    x = torch.randn(2, 8, 5, 5)
    out = PartialMixture(_Double(1), 4)(x, torch.ones(1))
    unshuffled = torch.cat([2 * x[:, :2], x[:, 2:]], dim=1)
    assert torch.equal(out, channel_shuffle(unshuffled, 4))
    strided = PartialMixture(_Double(2), 4)(x, torch.ones(1))
    assert strided.shape == (2, 8, 3, 3)  # the bypass is pooled to the op's (rounded-up) size


def test_node_softmax_normalizes_each_node() -> None:
    betas = torch.randn(9)
    w = node_softmax(betas, [2, 3, 4])
    assert torch.allclose(torch.stack([w[:2].sum(), w[2:5].sum(), w[5:].sum()]), torch.ones(3))


def _net(**options: object) -> SearchNetwork:
    torch.manual_seed(0)
    return SearchNetwork(C=8, num_classes=10, layers=3, in_channels=1, **options)  # type: ignore[arg-type]


def test_darts_supernet_with_partial_channels_and_edge_norm() -> None:
    net = _net(partial_channels=4, edge_norm=True)
    plain = _net()
    assert sum(p.numel() for p in net.weight_parameters()) < 0.5 * sum(p.numel() for p in plain.weight_parameters())
    arch = net.arch_parameters()
    assert len(arch) == 4 and arch[2] is net.betas_normal and arch[3] is net.betas_reduce
    assert not {id(p) for p in arch} & {id(p) for p in net.weight_parameters()}
    x = torch.randn(2, 1, 16, 16)
    assert net(x).shape == (2, 10)
    net.eval()
    masks = discretized_weights(net.derive())
    before = net(x, masks)
    with torch.no_grad():
        net.betas_normal.add_(torch.randn_like(net.betas_normal))
    assert torch.equal(net(x, masks), before)  # explicit one-hot weights compute the derived cell: β unused
    fresh = net.new()
    assert torch.equal(fresh.betas_normal, net.betas_normal)


def test_edge_norm_ranks_edges_by_alpha_times_beta() -> None:
    net = _net(edge_norm=True)
    with torch.no_grad():
        net.alphas_normal.zero_()
        net.alphas_normal[:, 4] = 3.0  # sep_conv_3x3 best on every edge: α alone cannot rank the edges
        net.betas_normal.zero_()
        net.betas_normal[2:5] = torch.tensor([-5.0, 5.0, 5.0])  # node 1 (inputs 0, 1, 2): input 0 down-weighted
    assert sorted(index for _, index in net.derive().normal[2:4]) == [1, 2]
    with torch.no_grad():
        net.betas_normal[2:5] = torch.tensor([5.0, 5.0, -5.0])
    assert sorted(index for _, index in net.derive().normal[2:4]) == [0, 1]


def test_nb201_supernet_takes_the_options() -> None:
    space = get_space("nb201")
    geometry = space.search_geometry(16, 1, 10)
    net = space.build_supernet(geometry, partial_channels=2, edge_norm=True)
    assert len(net.arch_parameters()) == 2
    assert net(torch.randn(2, 1, 16, 16)).shape == (2, 10)


def test_validation_names_the_problem() -> None:
    with pytest.raises(BadInputError, match="no such supernet option"):
        SearchConfig(space="fbnet", partial_channels=4)
    with pytest.raises(BadInputError, match="no such supernet option"):
        SearchConfig(space="proxyless", edge_norm=True)
    with pytest.raises(BadInputError, match="partial_channels=0"):
        SearchConfig(partial_channels=0)
    with pytest.raises(BadInputError, match="do not split into 3 parts"):
        _net(partial_channels=3)


def test_pc_search_end_to_end(tmp_path: Path) -> None:
    config = SearchConfig(layers=3, channels=8, limit=96, epochs=1, batch_size=32, steps_per_epoch=2, device="cpu",
                          method="darts", partial_channels=4, edge_norm=True)
    report = run_search(config, tmp_path / "run", progress=False)
    assert report["status"] == "complete" and report["config"]["partial_channels"] == 4
    with pytest.raises(BadInputError, match="partial_channels"):
        run_search(SearchConfig(**{**config.__dict__, "partial_channels": 2}), tmp_path / "run", resume=True,
                   progress=False)
