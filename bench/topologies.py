"""The convolution layers of the seed networks, as bench.conv_layers.ConvShape lists.

The ImageNet networks come from models/imagenet.py at full size: a forward pass of a zero
image records every nn.Conv2d's input shape, kernel, stride and padding. SCALE-Sim's own AlexNet
topology (topologies/conv_nets/alexnet.csv of scale-sim-v2: 5 conv layers, no padding, 224x224
input, each layer's input size given independently) is restated here.
"""

from __future__ import annotations

from .conv_layers import ConvShape

__all__ = ["SCALESIM_ALEXNET", "NETWORK_CONVS", "conv_layers"]

SCALESIM_ALEXNET = [
    ConvShape("Conv1", 3, 224, 224, 11, 96, stride=4),
    ConvShape("Conv2", 96, 27, 27, 5, 256),
    ConvShape("Conv3", 256, 13, 13, 3, 384),
    ConvShape("Conv4", 384, 13, 13, 3, 384),
    ConvShape("Conv5", 384, 13, 13, 3, 256),
]

#: Topology names -> models.imagenet network names ("alexnet_scalesim" is the list above).
NETWORK_CONVS = {"alexnet_scalesim": None, "alexnet": "alexnet", "vgg16": "vgg16",
                 "resnet18": "resnet18"}


def _from_model(network: str) -> list[ConvShape]:
    import torch
    from torch import nn

    from models.imagenet import build

    torch.set_num_threads(1)
    model, input_shape = build(network)
    shapes: list[ConvShape] = []

    def record(name: str):
        def hook(module: nn.Conv2d, args: tuple[torch.Tensor, ...], _out: torch.Tensor) -> None:
            _, channels, height, width = args[0].shape
            pads = {module.padding[0], module.padding[1]}
            if (module.kernel_size[0] != module.kernel_size[1] or module.stride[0] !=
                    module.stride[1] or len(pads) != 1 or module.groups != 1):
                raise ValueError(f"{network}.{name}: only square, ungrouped convolutions with "
                                 f"equal padding are benchmarked, not {module}")
            shapes.append(ConvShape(f"L{len(shapes) + 1:02d}_{name.replace('.', '_')}",
                                    channels, height, width, module.kernel_size[0],
                                    module.out_channels, module.stride[0], pads.pop()))
        return hook

    handles = [m.register_forward_hook(record(n)) for n, m in model.named_modules()
               if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        model(torch.zeros(input_shape))
    for handle in handles:
        handle.remove()
    return shapes


def conv_layers(topology: str) -> list[ConvShape]:
    """The conv layers of a topology named in NETWORK_CONVS, in execution order."""
    if topology not in NETWORK_CONVS:
        raise ValueError(f"unknown topology {topology!r}; choose one of "
                         f"{', '.join(NETWORK_CONVS)}")
    network = NETWORK_CONVS[topology]
    return list(SCALESIM_ALEXNET) if network is None else _from_model(network)
