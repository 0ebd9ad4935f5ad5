"""PNet, RNet and ONet as PyTorch modules built from a :class:`~mtcnn_lab.weights.NetSpec`.

The modules reproduce OpenFace's layer semantics: cross-correlation convolutions, per-channel
PReLU, max-pooling whose output size ``round((in - k) / s) + 1`` equals ``ceil_mode`` for the
stride 2 used by all three nets, the first FC layer's (channel, x, y) flatten order, and PNet's
last FC layer as a 1x1 convolution. Inputs are (N, 3, H, W) float R,G,B batches normalised as
``(v - 127.5) * 0.0078125``; outputs are raw: PNet (N, 6, h, w), RNet (N, 6), ONet (N, 16).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from mtcnn_lab.weights.netspec import FC, Conv, MaxPool, NetSpec, PReLU


class FlattenTransposed(nn.Module):
    """Flatten (N, C, H, W) maps as OpenFace does: each map transposed, i.e. order (c, x, y)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) maps -> (N, C * W * H) rows in OpenFace's (c, x, y) order."""
        return x.transpose(2, 3).flatten(1)


def _tensor(array) -> torch.Tensor:
    return torch.tensor(array, dtype=torch.float32)


def build_layers(spec: NetSpec) -> dict[str, nn.Module]:
    """The torch layers of a net in file order, keyed like the reference's layer outputs.

    Keys are ``lNN_<kind>`` (``lNN_fcin`` for the flatten before the first FC layer of RNet/ONet);
    the NetSpec's weights are copied in.
    """
    layers: dict[str, nn.Module] = {}
    maps = True  # do layers still see (N, C, H, W) maps?
    for key, layer in zip(spec.layer_keys(), spec.layers, strict=True):
        if isinstance(layer, Conv):
            n_out, n_in, kh, kw = layer.weight.shape
            conv = nn.Conv2d(n_in, n_out, (kh, kw))
            conv.weight.data, conv.bias.data = _tensor(layer.weight), _tensor(layer.bias)
            layers[key] = conv
        elif isinstance(layer, PReLU):
            act = nn.PReLU(len(layer.slopes))
            act.weight.data = _tensor(layer.slopes)
            layers[key] = act
        elif isinstance(layer, MaxPool):
            if layer.stride_x != 2 or layer.stride_y != 2:
                raise NotImplementedError("only stride-2 max-pooling maps onto torch's ceil_mode exactly")
            layers[key] = nn.MaxPool2d((layer.kernel_y, layer.kernel_x), (layer.stride_y, layer.stride_x),
                                       ceil_mode=True)
        elif isinstance(layer, FC):
            n_out, n_in = layer.weight.shape
            last_conv = next(m for m in reversed(layers.values()) if isinstance(m, nn.Conv2d))
            if maps and last_conv.out_channels == n_in:  # PNet: per-pixel FC == 1x1 convolution
                conv = nn.Conv2d(n_in, n_out, 1)
                conv.weight.data = _tensor(layer.weight).reshape(n_out, n_in, 1, 1)
                conv.bias.data = _tensor(layer.bias)
                layers[key] = conv
                continue
            if maps:
                layers[key.replace("_fc", "_fcin")] = FlattenTransposed()
                maps = False
            linear = nn.Linear(n_in, n_out)
            linear.weight.data, linear.bias.data = _tensor(layer.weight), _tensor(layer.bias)
            layers[key] = linear
        else:
            layers[key] = nn.Sigmoid()
    return layers


class OpenFaceNet(nn.Sequential):
    """One of PNet/RNet/ONet as an ``nn.Sequential`` whose children are named like the reference's
    layer outputs (``l00_conv``, ...); ``name`` is the NetSpec's name."""

    def __init__(self, spec: NetSpec):
        super().__init__(OrderedDict(build_layers(spec)))
        self.name = spec.name
        self.eval()
        for parameter in self.parameters():
            parameter.requires_grad_(False)
