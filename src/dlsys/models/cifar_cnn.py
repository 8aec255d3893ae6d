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


def transfer_features(src: nn.Module, dst: CifarCNN) -> list[str]:
    """Copy every weight of `src` except the head into `dst` (whose head stays freshly He-initialised).

    Returns the names of the copied tensors. Shapes must match except for the head.
    """
    src_state = src.state_dict() if isinstance(src, nn.Module) else src
    dst_state = dst.state_dict()
    copied = []
    for name, tensor in src_state.items():
        if name.startswith("head."):
            continue
        if name not in dst_state or dst_state[name].shape != tensor.shape:
            raise ValueError(f"cannot transfer {name}: shape {tuple(tensor.shape)} does not match the new model")
        dst_state[name] = tensor.detach().clone()
        copied.append(name)
    dst.load_state_dict(dst_state)
    return copied


def transfer_param_groups(model: CifarCNN, lr_transferred: float, lr_head: float) -> list[dict]:
    """Optimizer parameter groups: the transferred layers at `lr_transferred`, the new head at `lr_head`."""
    head_ids = {id(t) for t in model.head.parameters()}
    body = [t for t in model.parameters() if id(t) not in head_ids]
    return [{"params": body, "lr": lr_transferred, "name": "transferred"},
            {"params": list(model.head.parameters()), "lr": lr_head, "name": "head"}]
