"""Fully-connected MNIST classifiers: the 784→1024×5→10 baseline and the study variants.

The network owns its input normalisation (a fixed buffer), so callers feed float pixels in [0, 1] of
shape (N, 784) or (N, 28, 28). `layers` holds the six affine maps W1…W6 (nn.Linear or, after
compression, any module with the same call signature), so the compression code can swap them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from dlsys.core.context import load_checkpoint
from dlsys.core.errors import DataFormatError
from dlsys.core.outputs import save_torch

ACTIVATIONS = ("relu", "sigmoid")
INITS = ("default", "normal", "xavier", "he")
# MNIST pixel statistics (training set, [0, 1] scale): the usual normalisation constants.
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


@dataclass
class MLPConfig:
    in_dim: int = 784
    hidden: list[int] = field(default_factory=lambda: [1024] * 5)
    n_classes: int = 10
    activation: str = "relu"
    init: str = "he"
    init_std: float = 0.01          # only for init="normal"
    dropout_input: float = 0.0      # on the input pixels
    dropout_hidden: float = 0.0     # on every hidden layer's input (after the first)
    mean: float = MNIST_MEAN
    std: float = MNIST_STD


class MLP(nn.Module):
    def __init__(self, cfg: MLPConfig, generator: torch.Generator | None = None):
        super().__init__()
        if cfg.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {cfg.activation!r}")
        self.cfg = cfg
        dims = [cfg.in_dim, *cfg.hidden, cfg.n_classes]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.drops = nn.ModuleList(
            nn.Dropout(cfg.dropout_input if i == 0 else cfg.dropout_hidden) for i in range(len(self.layers)))
        self.act = nn.ReLU() if cfg.activation == "relu" else nn.Sigmoid()
        self.register_buffer("mean", torch.tensor(float(cfg.mean)), persistent=False)
        self.register_buffer("std", torch.tensor(float(cfg.std)), persistent=False)
        init_weights(self, cfg.init, cfg.init_std, generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.hidden_outputs(x)[-1]

    def hidden_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every layer's output: the hidden activations h1…h5, then the logits."""
        h = (x.flatten(1) - self.mean) / self.std
        outs = []
        last = len(self.layers) - 1
        for i, (drop, layer) in enumerate(zip(self.drops, self.layers)):
            h = layer(drop(h))
            if i < last:
                h = self.act(h)
            outs.append(h)
        return outs


def init_weights(model: MLP, scheme: str, std: float = 0.01, generator: torch.Generator | None = None) -> None:
    """normal: N(0, std²); xavier: Glorot-uniform; he: Kaiming-normal (fan-in, ReLU gain); biases 0."""
    if scheme not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {scheme!r}")
    if scheme == "default":
        return
    with torch.no_grad():
        for layer in model.layers:
            w = layer.weight
            fan_out, fan_in = w.shape
            if scheme == "normal":
                w.normal_(0.0, std, generator=generator)
            elif scheme == "xavier":
                bound = (6.0 / (fan_in + fan_out)) ** 0.5
                w.uniform_(-bound, bound, generator=generator)
            else:
                w.normal_(0.0, (2.0 / fan_in) ** 0.5, generator=generator)
            layer.bias.zero_()


def save_mlp(model: MLP, path: str | Path, extra: dict | None = None) -> Path:
    """Checkpoint = plain dict of config + tensors (loadable with weights_only=True)."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return save_torch({"config": asdict(model.cfg), "state_dict": state, **(extra or {})}, path)


def mlp_from_checkpoint(ckpt, path: str | Path = "the checkpoint") -> MLP:
    """The MLP a checkpoint dict (config + state_dict) describes, on the CPU."""
    if not isinstance(ckpt, dict) or "config" not in ckpt or "state_dict" not in ckpt:
        raise DataFormatError(f"{path}: not an MLP checkpoint written by mnist_train_mlp")
    model = MLP(MLPConfig(**ckpt["config"]))
    model.load_state_dict(ckpt["state_dict"])
    return model


def load_mlp(path: str | Path = "data/models/mnist/mlp.pt", device: str | torch.device = "cpu") -> MLP:
    """A saved MLP; refuses (one line) one whose training diverged, so NaN weights are never used as good."""
    return mlp_from_checkpoint(load_checkpoint(path), path).to(device)


def load_mlp_classifier(path: str | Path = "data/models/mnist/mlp.pt",
                        device: str | torch.device = "cpu") -> nn.Module:
    """The trained baseline, in eval mode: float pixels in [0, 1], (N, 784) or (N, 28, 28) → logits (N, 10)."""
    return load_mlp(path, device).eval()


def config_from_params(p, hidden_key: str = "hidden") -> MLPConfig:
    """MLPConfig from a params group such as mnist.mlp (validated, naming the key on error)."""
    return MLPConfig(
        hidden=p.list(hidden_key, item_type=int, min_len=1, lo=1),
        activation=p.choice("activation", ACTIVATIONS),
        init=p.choice("init", INITS),
        dropout_input=p.float("dropout_input", lo=0.0, hi=0.99, default=0.0),
        dropout_hidden=p.float("dropout_hidden", lo=0.0, hi=0.99, default=0.0),
    )
