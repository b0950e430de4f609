"""DNA teachers: feature points of every kind of network, stage cutting and matching, torchvision loading."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision

from sdnas_deploy.errors import BadInputError
from sdnas_deploy.methods.dna.stages import PointShape, match_blocks, probe, stage_ends
from sdnas_deploy.methods.dna.teacher import Teacher, feature_points, load_teacher
from sdnas_deploy.spaces import get_space, parse_arch


def _teacher(model: torch.nn.Module, channels: int, points: list | None = None) -> Teacher:
    return Teacher(model.eval(), points or feature_points(model), type(model).__name__, channels, 10, None)


@pytest.mark.parametrize(("spec", "setting", "points"), [
    ("fbnet:" + "-".join(["k5_e6"] * 12), "small", 13),
    ("nb201:|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|nor_conv_1x1~1|avg_pool_3x3~2|", "small",
     None),
    ("darts_v2", "cifar", None),
])
def test_sdnas_networks_have_feature_points(spec: str, setting: str, points: int | None) -> None:
    space, arch = parse_arch(spec)
    model = space.build_network(arch, space.geometry(setting, input_size=16, in_channels=1))
    shapes = probe(_teacher(model, 1, space.feature_points(model)), 1, 16)
    assert points is None or len(shapes) == points
    assert all(s.side >= 1 and s.width >= 1 for s in shapes)
    assert stage_ends(shapes)[-1] == shapes[-1].index  # the last stage ends at the last point


@pytest.mark.parametrize(("name", "kwargs"), [("mobilenet_v2", {"width_mult": 0.25}), ("resnet18", {}),
                                              ("efficientnet_b0", {}), ("mobilenet_v3_small", {})])
def test_torchvision_networks_have_feature_points(name: str, kwargs: dict) -> None:
    model = torchvision.models.get_model(name, weights=None, num_classes=10, **kwargs)
    shapes = probe(_teacher(model, 3), 1, 32)  # a grey image is repeated for the RGB teacher
    assert len(stage_ends(shapes)) >= 4 and shapes[-1].side == 1


def _shapes(spec: list[tuple[int, int]]) -> list[PointShape]:
    return [PointShape(i, f"p{i}", w, s) for i, (w, s) in enumerate(spec)]


def test_stages_merge_leading_teacher_stages_and_take_widths_and_strides() -> None:
    space = get_space("dna")  # small: 6 blocks, stem stride 1
    shapes = _shapes([(8, 16), (8, 16), (12, 16), (12, 16), (20, 8), (40, 4), (40, 4), (56, 4), (96, 2), (176, 2)])
    plans = match_blocks(shapes, space, "small", 1, 16)
    assert [p.end for p in plans] == [3, 4, 6, 7, 8, 9]
    assert [p.stride for p in plans] == [1, 2, 2, 1, 2, 1]
    stages = space.teacher_stages("small", [p.stride for p in plans], [p.out_width for p in plans])
    rows = space.stage_rows("small", stages)
    assert [r.get("out_width", r["width"]) for r in rows] == [12, 20, 40, 56, 96, 176]
    student = space.blockwise_student("small", stages, 1, 16)
    x = torch.zeros(2, 1, 16, 16)
    for block, plan in zip(student.blocks, plans):
        x = block(x, block.random_path())
        assert tuple(x.shape[1:]) == (plan.out_width, plan.out_side, plan.out_side)


def test_stage_mismatches_are_one_line_each() -> None:
    space = get_space("dna")
    with pytest.raises(BadInputError, match="teacher has 3 stage"):
        match_blocks(_shapes([(8, 16), (16, 8), (32, 4)]), space, "small", 1, 16)
    with pytest.raises(BadInputError, match="changes resolution by 1 or 2 at most"):
        match_blocks(_shapes([(8, 4), (9, 4), (10, 4), (11, 2), (12, 2), (13, 1)]), space, "small", 1, 16)
    with pytest.raises(BadInputError, match="increasing point indices"):
        match_blocks(_shapes([(8, 16)] * 8), space, "small", 1, 16, override=[0, 2, 1, 3, 4, 5])


def test_stages_that_equal_the_setting_need_no_stages_field() -> None:
    space = get_space("dna")
    rows = space.stage_rows("small", None)
    side, spec = 16, []
    for row in rows:
        side = (side + 1) // 2 if row["stride"] == 2 else side
        spec.append((row["width"], side))
    plans = match_blocks(_shapes(spec), space, "small", 1, 16)
    assert space.teacher_stages("small", [p.stride for p in plans], [p.out_width for p in plans]) is None


def test_torchvision_teacher_loads_from_a_state_dict_and_refuses_others(tmp_path: Path) -> None:
    model = torchvision.models.get_model("mobilenet_v2", weights=None, num_classes=10)
    path = tmp_path / "mnv2.pt"
    torch.save(model.state_dict(), path)
    teacher = load_teacher("torchvision:mobilenet_v2", str(path))
    assert teacher.num_classes == 10 and teacher.in_channels == 3 and len(teacher.points) == 18
    with pytest.raises(BadInputError, match="does not match torchvision resnet18"):
        load_teacher("torchvision:resnet18", str(path))
    with pytest.raises(BadInputError, match="needs --teacher-weights"):
        load_teacher("torchvision:mobilenet_v2")
    with pytest.raises(BadInputError, match="teacher weights not found"):
        load_teacher("torchvision:mobilenet_v2", str(tmp_path / "missing.pt"))
    with pytest.raises(BadInputError, match="did you mean 'mobilenet_v2'"):
        load_teacher("torchvision:mobilenet_v9", str(path))
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a torch file")
    with pytest.raises(BadInputError, match="not a readable weights file"):
        load_teacher("torchvision:mobilenet_v2", str(corrupt))
