"""The course's tiny CIFAR CNN, layer for layer.

conv 10@5×5 (stride 1) → ReLU → max-pool 2×2/2 → conv 10@5×5 → ReLU → max-pool 2×2/2 → flatten →
FC 20 → ReLU → FC n_classes (10, or 3 for the rotation pretext); softmax lives in the loss
(cross-entropy on logits). He (Kaiming-normal, fan-in, ReLU gain) initialisation, zero biases.
Inputs are 32×32×3 images in [-1, 1], NCHW.
"""

from __future__ import annotations

import torch
from torch import nn


class CifarCNN(nn.Module):
    def __init__(self, n_classes: int = 10, channels: tuple[int, int] = (10, 10), kernel: int = 5,
                 hidden: int = 20, image_size: int = 32, in_channels: int = 3):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels[0], kernel, stride=1)
        self.conv2 = nn.Conv2d(channels[0], channels[1], kernel, stride=1)
        side = ((image_size - kernel + 1) // 2 - kernel + 1) // 2
        if side < 1:
            raise ValueError(f"image_size {image_size} is too small for two {kernel}×{kernel} convs + pools")
        self.fc1 = nn.Linear(channels[1] * side * side, hidden)
        self.head = nn.Linear(hidden, n_classes)
        self.pool = nn.MaxPool2d(2, 2)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                he_init_(m)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Everything but the head: the representation the pretext task transfers."""
        x = self.pool(torch.relu(self.conv1(x)))
        x = self.pool(torch.relu(self.conv2(x)))
        return torch.relu(self.fc1(torch.flatten(x, 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def he_init_(layer: nn.Module) -> None:
    nn.init.kaiming_normal_(layer.weight, mode="fan_in", nonlinearity="relu")
    nn.init.zeros_(layer.bias)


# The layers a pretext model can hand on, input to output (the head is always new: its classes differ).
TRANSFERABLE = ("conv1", "conv2", "fc1")


def check_transfer_layers(layers) -> tuple[str, ...]:
    """`layers` as a tuple of distinct TRANSFERABLE names; ValueError naming the bad one otherwise."""
    if isinstance(layers, str):
        raise ValueError(f"need a list of layer names, not the string {layers!r}")
    layers = tuple(layers)
    for name in layers:
        if name not in TRANSFERABLE:
            raise ValueError(f"unknown layer {name!r}; transferable: {', '.join(TRANSFERABLE)}")
    if not layers or len(set(layers)) != len(layers):
        raise ValueError(f"need one or more distinct layers of {', '.join(TRANSFERABLE)}, got {list(layers)}")
    return layers


def _layer(name: str) -> str:
    return name.split(".", 1)[0]


def transfer_features(src: nn.Module, dst: CifarCNN, layers=TRANSFERABLE) -> list[str]:
    """Copy the weights of `layers` (default: every layer but the head) from `src` into `dst`; the others
    keep their fresh He initialisation.

    Returns the names of the copied tensors. Their shapes must match.
    """
    layers = check_transfer_layers(layers)
    src_state = src.state_dict() if isinstance(src, nn.Module) else src
    dst_state = dst.state_dict()
    copied = []
    for name, tensor in src_state.items():
        if _layer(name) not in layers:
            continue
        if name not in dst_state or dst_state[name].shape != tensor.shape:
            raise ValueError(f"cannot transfer {name}: shape {tuple(tensor.shape)} does not match the new model")
        dst_state[name] = tensor.detach().clone()
        copied.append(name)
    missing = [n for n in dst_state if _layer(n) in layers and n not in copied]  # a layer copied in part, too
    if missing:
        raise ValueError(f"the pretext weights have no {', '.join(missing)}")
    dst.load_state_dict(dst_state)
    return copied


def transfer_param_groups(model: CifarCNN, lr_transferred: float, lr_new: float,
                          layers=TRANSFERABLE) -> list[dict]:
    """Optimizer parameter groups: the transferred `layers` at `lr_transferred`, the freshly initialised
    rest (the head, and any layer not transferred) at `lr_new`."""
    layers = check_transfer_layers(layers)
    named = list(model.named_parameters())
    return [{"params": [t for n, t in named if _layer(n) in layers], "lr": lr_transferred, "name": "transferred"},
            {"params": [t for n, t in named if _layer(n) not in layers], "lr": lr_new, "name": "new"}]
