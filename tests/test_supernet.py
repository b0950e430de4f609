"""The DARTS supernet: mixed ops, α bookkeeping, forward/backward, discretized evaluation."""

from __future__ import annotations


import pytest
import torch

from sdnas_deploy.errors import BadInputError
from sdnas_deploy.spaces import SPACES, get_space
from sdnas_deploy.spaces.darts.genotype import DARTS_V2, derive_genotype, edge_index, skip_count
from sdnas_deploy.spaces.darts.ops import PRIMITIVES
from sdnas_deploy.spaces.darts.supernet import MixedOp, SearchCell, SearchNetwork, discretized_weights


def _tiny(layers: int = 3) -> SearchNetwork:
    torch.manual_seed(0)
    return SearchNetwork(C=4, num_classes=3, layers=layers, in_channels=1)


def test_mixed_op_is_the_weighted_sum_of_all_ops() -> None:
    torch.manual_seed(0)
    op = MixedOp(4, stride=2).eval()
    x = torch.randn(2, 4, 6, 6)
    w = torch.softmax(torch.randn(8), dim=0)
    expected = sum(w[k] * op._ops[k](x) for k in range(8))
    assert torch.allclose(op(x, w), expected, atol=1e-6)
    pools = [op._ops[PRIMITIVES.index(n)] for n in ("max_pool_3x3", "avg_pool_3x3")]
    assert all(isinstance(p[1], torch.nn.BatchNorm2d) and p[1].weight is None for p in pools)


def test_search_cell_has_14_edges_and_concatenates_4_nodes() -> None:
    cell = SearchCell(4, 4, C_prev_prev=6, C_prev=8, C=4, reduction=True, reduction_prev=True)
    assert len(cell._ops) == 14
    w = torch.softmax(torch.randn(14, 8), dim=-1)
    out = cell(torch.randn(2, 6, 16, 16), torch.randn(2, 8, 8, 8), w)
    assert out.shape == (2, 16, 4, 4)
    bns = [m for m in cell.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(bn.weight is None for bn in bns), "supernet ops use affine=False BatchNorm"


def test_reduction_cells_sit_at_one_and_two_thirds() -> None:
    net = SearchNetwork(C=2, num_classes=2, layers=5)
    assert [c.reduction for c in net.cells] == [False, True, False, True, False]


def test_alphas_are_parameters_in_state_dict_but_not_weights() -> None:
    net = _tiny()
    assert net.alphas_normal.shape == (14, 8) and net.alphas_reduce.shape == (14, 8)
    assert float(net.alphas_normal.detach().abs().max()) < 0.01, "initialised as 1e-3 * randn"
    assert {"alphas_normal", "alphas_reduce"} <= set(net.state_dict())
    arch = net.arch_parameters()
    assert len(arch) == 2 and arch[0] is net.alphas_normal and arch[1] is net.alphas_reduce
    weights = net.weight_parameters()
    assert not any(p is a for p in weights for a in arch)
    assert len(weights) + 2 == len(list(net.parameters()))


def test_forward_backward_reaches_alphas_and_weights() -> None:
    net = _tiny()
    logits = net(torch.randn(2, 1, 8, 8))
    assert logits.shape == (2, 3)
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 2])).backward()
    for alpha in net.arch_parameters():
        assert alpha.grad is not None and float(alpha.grad.abs().sum()) > 0
    assert net.stem[0].weight.grad is not None and float(net.stem[0].weight.grad.abs().sum()) > 0


def test_new_copies_alphas_into_an_independent_network() -> None:
    net = _tiny()
    with torch.no_grad():
        net.alphas_normal.add_(1.0)
    other = net.new()
    assert isinstance(other, SearchNetwork) and other is not net
    assert torch.equal(other.alphas_normal, net.alphas_normal)
    assert torch.equal(other.alphas_reduce, net.alphas_reduce)
    assert other.init_args == net.init_args
    with torch.no_grad():
        other.alphas_normal.zero_()
    assert float(net.alphas_normal.detach().min()) > 0.5, "the copy must not share storage"


def test_genotype_follows_softmax_of_alphas() -> None:
    net = _tiny()
    with torch.no_grad():
        net.alphas_normal.normal_()
        net.alphas_reduce.normal_()
    expected = derive_genotype(torch.softmax(net.alphas_normal, -1), torch.softmax(net.alphas_reduce, -1))
    assert net.genotype() == expected


def test_discretized_weights_mark_exactly_the_derived_edges() -> None:
    masks = discretized_weights(DARTS_V2)
    normal, reduce = masks["normal"], masks["reduce"]
    for mask, entries in ((normal, DARTS_V2.normal), (reduce, DARTS_V2.reduce)):
        assert mask.shape == (14, 8) and int(mask.sum()) == 8
        for k, (op, index) in enumerate(entries):
            assert mask[edge_index(k // 2, index), PRIMITIVES.index(op)] == 1.0
    derived = derive_genotype(normal, reduce)
    for cell in ("normal", "reduce"):
        mine, theirs = getattr(derived, cell), getattr(DARTS_V2, cell)
        for node in range(4):
            assert set(mine[2 * node : 2 * node + 2]) == set(theirs[2 * node : 2 * node + 2])


def test_discretized_forward_only_uses_the_derived_ops() -> None:
    net = _tiny(layers=2)
    logits = net(torch.randn(2, 1, 8, 8), discretized_weights(DARTS_V2))
    logits.sum().backward()
    cell = net.cells[0]  # layers=2: cell 0 is a reduction cell
    assert cell.reduction
    used = {(edge_index(k // 2, i), PRIMITIVES.index(op)) for k, (op, i) in enumerate(DARTS_V2.reduce)}
    for edge, mixed in enumerate(cell._ops):
        for k, op in enumerate(mixed._ops):
            grads = [p.grad for p in op.parameters()]
            if not grads:
                continue
            touched = any(g is not None and float(g.abs().sum()) > 0 for g in grads)
            assert touched == ((edge, k) in used), (edge, PRIMITIVES[k])
    assert net.alphas_normal.grad is None, "explicit weights bypass softmax(α)"


def test_weight_override_must_have_alpha_shape() -> None:
    net = _tiny()
    with pytest.raises(ValueError, match="normal"):
        net(torch.randn(1, 1, 8, 8), {"normal": torch.zeros(14, 7)})
    with pytest.raises(ValueError, match="unknown architecture label"):
        net(torch.randn(1, 1, 8, 8), {"normals": torch.zeros(14, 8)})


def test_bad_constructor_arguments() -> None:
    with pytest.raises(ValueError):
        SearchNetwork(C=0, num_classes=2, layers=1)
    with pytest.raises(ValueError):
        SearchNetwork(C=2, num_classes=2, layers=1, multiplier=5)


def test_space_registry() -> None:
    spec = get_space("darts")
    assert SPACES["darts"] is spec and spec.name == "darts"
    net = spec.build_supernet(spec.search_geometry(8, 1, 2, layers=2, channels=2))
    assert isinstance(net, SearchNetwork) and net.arch_labels() == ("normal", "reduce")
    masks = spec.discretize(DARTS_V2, net)
    derived = derive_genotype(masks["normal"], masks["reduce"])
    assert skip_count(derived, "normal") == skip_count(DARTS_V2, "normal") == 2
    with pytest.raises(BadInputError, match="did you mean 'darts'"):
        get_space("dart")
