"""Typed, validated access to params.yaml.

Every stage reads its params through `Params` at start-up, so a value of the wrong type or out of
range fails before any work is done, with a message naming the key.

`load_params` also checks the file as a whole against `dvc.yaml` beside it: every key must be read by
some stage (a stage's `params:` entry covers that key's whole subtree), so a typo such as `svd.rnak`
next to `svd.rank` fails at once, naming the nearest known key, instead of being silently ignored.
The known keys are derived from dvc.yaml at load time, so renaming a group needs no list kept in sync.
"""

from __future__ import annotations

import difflib
import itertools
import math
import re
from pathlib import Path
from typing import Any, Iterable, Sequence

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from dlsys.core.errors import UserError

_MISSING = object()
# Module level: inside the class body `int`/`float` would name the getter methods.
_NUMBER = (int, float)
# torch.manual_seed takes at most 64 bits; stages add small offsets to the seed, so keep one bit spare.
SEED_MAX = 2**63 - 1


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
        raise UserError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping at the top level")
    params = Params(data)
    if "seed" in data:
        params.seed()
    dvc_yaml = path.parent / "dvc.yaml"
    if dvc_yaml.exists():
        check_known_keys(data, dvc_yaml, path.name)
    return params


# ------------------------------------------------------------------ every key is read by some stage

_TEMPLATE = re.compile(r"\$\{\s*([^}]+?)\s*\}")
_ANY = "\0*"
SHOW_UNKNOWN = 5  # keys named in the error (a renamed group would otherwise give a page-long line)  # a key segment whose value dvc.yaml leaves to a template we could not resolve


def check_known_keys(data: dict, dvc_yaml: Path, params_name: str = "params.yaml") -> None:
    """Refuse keys of the params file that no stage of `dvc_yaml` lists (nor a template interpolates)."""
    import yaml

    try:
        pipeline = yaml.load(dvc_yaml.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
    except yaml.YAMLError as exc:
        raise UserError(f"{dvc_yaml}: not valid YAML: {exc}") from None
    known = known_keys(pipeline, data, params_name)
    if known is None:
        return  # a stage tracks the whole file
    leaves = list(_leaves(data))
    unknown = [key for key in leaves if not any(_covers(k, key) for k in known)]
    if not unknown:
        return
    candidates = sorted({k for k in known if _ANY not in k} | {k for k in leaves if k not in unknown}
                        | {".".join(k.split(".")[:i]) for k in leaves if k not in unknown
                           for i in range(1, k.count(".") + 1)})
    described = []
    for key in unknown[:SHOW_UNKNOWN]:
        near = difflib.get_close_matches(key, candidates, n=1, cutoff=0.6)
        described.append(f"'{key}'" + (f" (did you mean '{near[0]}'?)" if near else ""))
    if len(unknown) > SHOW_UNKNOWN:
        described.append(f"and {len(unknown) - SHOW_UNKNOWN} more")
    raise UserError(f"{params_name}: {'unknown key' if len(unknown) == 1 else f'{len(unknown)} unknown keys'} "
                    f"{', '.join(described)}: no stage in {dvc_yaml.name} reads "
                    f"{'it' if len(unknown) == 1 else 'them'} (list it under a stage's params:, or remove it)")


def known_keys(pipeline: dict, data: dict, params_name: str = "params.yaml") -> set[str] | None:
    """Dotted keys the stages of a dvc.yaml read from the params file (None: some stage reads it all)."""
    known: set[str] = set()
    stages = pipeline.get("stages") or {}
    for stage in stages.values():
        if not isinstance(stage, dict):
            continue
        body = stage.get("do", stage)
        loops = _loop_values(stage, data)
        for entry in body.get("params") or []:
            if isinstance(entry, str):
                keys = [entry]
            elif isinstance(entry, dict):
                keys = []
                for fname, listed in entry.items():
                    if Path(str(fname)).name != params_name:
                        continue
                    if not listed:
                        return None
                    keys += [str(k) for k in listed]
            else:
                continue
            for key in keys:
                known.update(_expand(key, loops, data))
    # Interpolated values (`foreach: ${imputer.lambdas}`, `cmd: ... ${x.y}`) are read from the params file too.
    for expr in _TEMPLATE.findall(repr(pipeline)):
        if not expr.split(".")[0] in ("item", "key") and _lookup(data, expr) is not None:
            known.add(expr)
    return known


def _loop_values(stage: dict, data: dict) -> dict[str, list]:
    """The values each loop variable of a foreach/matrix stage takes (`item`, `item.<f>`, `key`)."""
    values: dict[str, list] = {}
    if "matrix" in stage and isinstance(stage["matrix"], dict):
        for name, vals in stage["matrix"].items():
            values[f"item.{name}"] = _resolve_list(vals, data)
    if "foreach" in stage:
        items = stage["foreach"]
        if isinstance(items, str):
            items = _lookup(data, _TEMPLATE.fullmatch(items.strip()).group(1)) if _TEMPLATE.fullmatch(items.strip()) \
                else None
        if isinstance(items, dict):
            values["key"] = list(items)
            items = list(items.values())
        if isinstance(items, list):
            values["item"] = items
            for field in {f for it in items if isinstance(it, dict) for f in it}:
                values[f"item.{field}"] = [it.get(field) for it in items if isinstance(it, dict)]
    return values


def _resolve_list(vals, data: dict) -> list | None:
    if isinstance(vals, list):
        return vals
    if isinstance(vals, str) and _TEMPLATE.fullmatch(vals.strip()):
        found = _lookup(data, _TEMPLATE.fullmatch(vals.strip()).group(1))
        return found if isinstance(found, list) else None
    return None


def _expand(key: str, loops: dict[str, list], data: dict) -> list[str]:
    exprs = _TEMPLATE.findall(key)
    if not exprs:
        return [key]
    choices = []
    for expr in exprs:
        vals = loops.get(expr)
        if vals is None and not expr.split(".")[0] in ("item", "key"):
            found = _lookup(data, expr)
            vals = [found] if found is not None and not isinstance(found, (dict, list)) else None
        choices.append([str(v) for v in vals] if vals else [_ANY])
    out = []
    for combo in itertools.product(*choices):
        it = iter(combo)
        out.append(_TEMPLATE.sub(lambda m: next(it), key))
    return out


def _lookup(data: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data


def _leaves(data: dict, prefix: str = ""):
    for k, v in data.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            yield from _leaves(v, key + ".")
        else:
            yield key


def _covers(known: str, key: str) -> bool:
    """`known` (a dvc.yaml params entry) covers `key` when it is the key itself or one of its groups."""
    a, b = known.split("."), key.split(".")
    return len(a) <= len(b) and all(x == _ANY or x == y for x, y in zip(a, b))


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

    def int(self, key: str, lo: int | None = None, hi: int | None = None, default: Any = _MISSING, *,
            gt: int | None = None, lt: int | None = None) -> int:
        v = self.raw(key, default)
        if isinstance(v, bool) or not isinstance(v, int):
            raise self._bad(key, "an integer", v)
        self._check_range(key, v, lo, hi, gt, lt)
        return v

    def float(self, key: str, lo: float | None = None, hi: float | None = None, default: Any = _MISSING, *,
              gt: float | None = None, lt: float | None = None) -> float:
        """A finite number in [lo, hi]; `gt`/`lt` are exclusive bounds (`gt=0`: a learning rate of 0
        would train nothing, so it is refused rather than run)."""
        v = self.raw(key, default)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise self._bad(key, "a finite number", v)
        self._check_range(key, v, lo, hi, gt, lt)
        return float(v)

    def seed(self, key: str = "seed") -> int:
        """The random seed: an integer in [0, 2**63 - 1] (torch takes 64 bits at most)."""
        return self.int(key, lo=0, hi=SEED_MAX)

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

    def _check_range(self, key: str, v: float, lo: float | None, hi: float | None, gt: float | None = None,
                     lt: float | None = None) -> None:
        if lo is not None and v < lo:
            raise self._bad(key, f">= {lo}", v)
        if hi is not None and v > hi:
            raise self._bad(key, f"<= {hi}", v)
        if gt is not None and not v > gt:
            raise self._bad(key, f"> {gt}", v)
        if lt is not None and not v < lt:
            raise self._bad(key, f"< {lt}", v)

    def as_dict(self) -> dict:
        return self._data


def _type_name(t: type | tuple) -> str:
    if isinstance(t, tuple):
        return " or ".join(x.__name__ for x in t)
    return t.__name__
