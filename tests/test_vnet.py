import copy

import pytest
import torch
from monai.networks.nets import VNet as MonaiVNet

from abdoseg.vnet import VNet


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_paper_settings_match_monai_shape_and_size():
    ours = VNet(in_channels=1, out_channels=5, base_channels=16, depth=4, kernel_size=5, norm="batch")
    ref = MonaiVNet(spatial_dims=3, in_channels=1, out_channels=5)
    x = torch.zeros(1, 1, 32, 32, 32)
    with torch.no_grad():
        assert ours.eval()(x).shape == ref.eval()(x).shape == (1, 5, 32, 32, 32)
    assert abs(n_params(ours) / n_params(ref) - 1) < 0.10


@pytest.mark.parametrize("base,depth,kernel,norm", [(4, 2, 3, "instance"), (8, 3, 3, "batch"), (6, 1, 5, "none")])
def test_light_settings_train_a_step(base, depth, kernel, norm):
    net = VNet(1, 5, base, depth, kernel, norm)
    size = 2 ** depth * 2
    x, y = torch.randn(2, 1, size, size, size), torch.randint(0, 5, (2, size, size, size))
    loss = torch.nn.functional.cross_entropy(net(x), y)
    loss.backward()
    assert all(p.grad is not None for p in net.parameters())


def test_deep_supervision_adds_coarse_outputs_in_training_only():
    net = VNet(1, 5, 4, 3, 3, "instance", deep_supervision=2)
    x = torch.randn(2, 1, 32, 24, 16)
    outs = net.train()(x)
    assert [tuple(o.shape) for o in outs] == [(2, 5, 32, 24, 16), (2, 5, 16, 12, 8), (2, 5, 8, 6, 4)]
    sum(o.mean() for o in outs).backward()
    assert all(p.grad is not None for p in net.parameters())  # every head is trained
    with torch.no_grad():
        assert net.eval()(x).shape == (2, 5, 32, 24, 16)  # inference sees one full-resolution output
    with pytest.raises(ValueError, match="deep_supervision"):
        VNet(1, 5, 4, 2, 3, "instance", deep_supervision=2)


def test_bad_sizes_and_settings_are_clear_errors():
    with pytest.raises(ValueError, match="divisible by 8"):
        VNet(1, 5, 4, 3, 3, "instance")(torch.zeros(1, 1, 20, 16, 16))
    with pytest.raises(ValueError, match="odd"):
        VNet(1, 5, 4, 2, 4, "instance")
    with pytest.raises(ValueError, match="batch, instance or none"):
        VNet(1, 5, 4, 2, 3, "layer")


def test_paper_preset_is_valid_and_is_the_paper_network():
    import jsonschema
    import yaml
    from snakemake.utils import update_config

    from abdoseg.vnet import build
    from conftest import REPO

    base = yaml.safe_load((REPO / "params.yaml").read_text())
    params = copy.deepcopy(base)
    update_config(params, yaml.safe_load((REPO / "workflow" / "presets" / "vnet-paper.yaml").read_text()))
    jsonschema.validate(params, yaml.safe_load((REPO / "workflow" / "schemas" / "params.schema.yaml").read_text()))
    assert all(p % 2 ** params["model"]["depth"] == 0 for p in params["train"]["patch_size"])
    for key in ("lr", "epochs", "batch_size", "patches_per_epoch"):  # the preset changes the network and patch only
        assert params["train"][key] == base["train"][key], key
    ours, ref = build(params["model"]), MonaiVNet(spatial_dims=3, in_channels=1, out_channels=5)
    assert abs(n_params(ours) / n_params(ref) - 1) < 0.10
