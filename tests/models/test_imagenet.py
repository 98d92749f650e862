import pytest
import torch

from models.imagenet import NETWORKS, build

torch.set_num_threads(1)

# Multiply-accumulate counts (convolutions + fully connected layers), in millions, as
# published: VGG-16 15.5 G, ResNet-18 1.8 G, ResNet-50 4.1 G, GoogLeNet 1.5 G. AlexNet here is
# the single-tower network (no channel groups): 1.14 G (the two-tower original is 0.72 G). NIN
# is its ImageNet model from the paper's layer table: 0.97 G.
MACS = {"alexnet": (1130, 1140), "vgg16": (15300, 15600), "resnet18": (1800, 1830),
        "resnet50": (4080, 4130), "googlenet": (1500, 1600), "nin": (960, 980),
        "lenet5": (0.4, 0.45)}


def count_macs(model, shape):
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        if isinstance(module, torch.nn.Conv2d):
            total += output.numel() * module.in_channels // module.groups * \
                module.kernel_size[0] * module.kernel_size[1]
        elif isinstance(module, torch.nn.Linear):
            total += module.in_features * module.out_features

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    with torch.no_grad():
        out = model(torch.zeros(shape))
    for h in handles:
        h.remove()
    return total, out.shape


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_networks_have_the_published_size(name):
    model, shape = build(name)
    macs, out_shape = count_macs(model, shape)
    low, high = MACS[name]
    assert low <= macs / 1e6 <= high
    assert out_shape == ((1, 10) if name == "lenet5" else (1, 1000))


def test_unknown_network_is_rejected():
    with pytest.raises(ValueError, match="unknown network 'lenet6'"):
        build("lenet6")
