"""Typed, validated access to params.yaml.

Every stage reads its params through `Params` at start-up, so a value of the wrong type or out of
range fails before any work is done, with a message naming the key.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable, Sequence

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from dlsys.core.errors import UserError

_MISSING = object()
# Module level: inside the class body `int`/`float` would name the getter methods.
_NUMBER = (int, float)


def read_yaml(text: str) -> Any:
    """Parse params YAML the way DVC does (YAML 1.2, ruamel): `dvc exp run -S` rewrites params.yaml
    and drops quotes that only YAML 1.1 needs, so a YAML 1.1 reader would turn the keyword list
    [yes, no, on, off] into booleans."""
    return YAML(typ="safe", pure=True).load(text)


def load_params(path: str | Path = "params.yaml") -> "Params":
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: params file not found (run stages from the repository root)")
    try:
        data = read_yaml(path.read_text()) or {}
    except YAMLError as exc:
        raise UserError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping at the top level")
    return Params(data)


class Params:
    """Dotted-key access with type and range checks: `p.int("mnist.train.epochs", lo=1)`."""

    def __init__(self, data: dict, prefix: str = ""):
        self._data = data
        self._prefix = prefix

    def _key(self, key: str) -> str:
        return f"{self._prefix}.{key}" if self._prefix else key

    def raw(self, key: str, default: Any = _MISSING) -> Any:
        node: Any = self._data
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                if default is not _MISSING:
                    return default
                raise UserError(f"params.yaml: missing key '{self._key(key)}'")
            node = node[part]
        return node

    def has(self, key: str) -> bool:
        return self.raw(key, default=None) is not None

    def sub(self, key: str) -> "Params":
        node = self.raw(key)
        if not isinstance(node, dict):
            raise UserError(f"params.yaml: '{self._key(key)}' must be a mapping, got {type(node).__name__}")
        return Params(node, self._key(key))

    def _bad(self, key: str, what: str, value: Any) -> UserError:
        return UserError(f"params.yaml: '{self._key(key)}' must be {what}, got {value!r}")

    def int(self, key: str, lo: int | None = None, hi: int | None = None, default: Any = _MISSING) -> int:
        v = self.raw(key, default)
        if isinstance(v, bool) or not isinstance(v, int):
            raise self._bad(key, "an integer", v)
        self._check_range(key, v, lo, hi)
        return v

    def float(self, key: str, lo: float | None = None, hi: float | None = None, default: Any = _MISSING) -> float:
        v = self.raw(key, default)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise self._bad(key, "a finite number", v)
        self._check_range(key, v, lo, hi)
        return float(v)

    def bool(self, key: str, default: Any = _MISSING) -> bool:
        v = self.raw(key, default)
        if not isinstance(v, bool):
            raise self._bad(key, "true or false", v)
        return v

    def str(self, key: str, default: Any = _MISSING) -> str:
        v = self.raw(key, default)
        if not isinstance(v, str):
            raise self._bad(key, "a string", v)
        return v

    def choice(self, key: str, choices: Sequence[str], default: Any = _MISSING) -> str:
        v = self.raw(key, default)
        if v not in choices:
            raise self._bad(key, "one of " + ", ".join(map(str, choices)), v)
        return v

    def list(self, key: str, item_type: type | tuple = _NUMBER, min_len: int = 0,
             lo: float | None = None, hi: float | None = None, allow: Iterable = ()) -> list:
        """A list whose items are `item_type` (range-checked) or one of the literal values in `allow`."""
        v = self.raw(key)
        allowed = set(allow)
        if not isinstance(v, list) or len(v) < min_len:
            raise self._bad(key, f"a list of at least {min_len} item(s)", v)
        for item in v:
            if isinstance(item, str) and item in allowed:
                continue
            if isinstance(item, bool) or not isinstance(item, item_type):
                raise self._bad(key, "a list of " + _type_name(item_type), v)
            if isinstance(item, (int, float)):
                self._check_range(key, item, lo, hi)
        return list(v)

    def _check_range(self, key: str, v: float, lo: float | None, hi: float | None) -> None:
        if lo is not None and v < lo:
            raise self._bad(key, f">= {lo}", v)
        if hi is not None and v > hi:
            raise self._bad(key, f"<= {hi}", v)

    def as_dict(self) -> dict:
        return self._data


def _type_name(t: type | tuple) -> str:
    if isinstance(t, tuple):
        return " or ".join(x.__name__ for x in t)
    return t.__name__
