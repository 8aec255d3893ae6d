import subprocess
import sys
from pathlib import Path

import yaml

import pytest

from dlsys.core.overlay import apply_dotted, flatten, set_args

ROOT = Path(__file__).resolve().parents[2]


def test_flatten_and_set_args():
    overlay = {"data": {"mnist": {"source": "real", "n_train": 60000}}, "svd": {"ranks": [10, "full"]}}
    assert flatten(overlay) == {"data.mnist.source": "real", "data.mnist.n_train": 60000,
                                "svd.ranks": [10, "full"]}
    assert set_args(overlay) == ["-S", "data.mnist.source=real", "-S", "data.mnist.n_train=60000",
                                 "-S", 'svd.ranks=[10, "full"]']


def test_params_real_only_overrides_existing_keys():
    """Every key of params-real.yaml exists in params.yaml: a typo would silently add a new param."""
    real = ROOT / "params-real.yaml"
    base = flatten(yaml.safe_load((ROOT / "params.yaml").read_text()))
    overlay = flatten(yaml.safe_load(real.read_text()) or {})
    assert overlay, "params-real.yaml is empty"
    unknown = sorted(set(overlay) - set(base))
    assert not unknown, f"params-real.yaml keys missing from params.yaml: {unknown}"
    sources = {k: v for k, v in overlay.items() if k.startswith("data.") and k.endswith(".source")}
    # Real files everywhere: the official/course forms, or the builders that make them from public corpora.
    assert sources and "synthetic" not in set(sources.values())
    assert {sources["data.speakers.source"], sources["data.timit_denoise.source"]} == {"librispeech", "public"}


def test_cli_prints_quoted_args(tmp_path):
    (tmp_path / "o.yaml").write_text("a:\n  b: [1, 2]\n")
    out = subprocess.run([sys.executable, "-m", "dlsys.core.overlay", str(tmp_path / "o.yaml")],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == "-S 'a.b=[1, 2]'"


def test_apply_dotted_copies_and_refuses_keys_that_do_not_exist():
    data = {"a": {"b": 1, "c": {"d": [1]}}, "e": 2}
    out = apply_dotted(data, {"a.c.d": [5], "e": 3})
    assert out == {"a": {"b": 1, "c": {"d": [5]}}, "e": 3}
    assert data["a"]["c"]["d"] == [1] and data["e"] == 2  # the input is left as it was
    for typo in ("a.x", "a.b.c", "z.b"):
        with pytest.raises(KeyError, match=typo.replace(".", r"\.")):
            apply_dotted(data, {typo: 0})
