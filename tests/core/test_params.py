import pytest

from dlsys.core.errors import UserError
from dlsys.core.params import Params, load_params


P = Params({"a": {"n": 3, "lr": 0.1, "flag": True, "name": "x", "ranks": [10, 20, "full"], "bad": "3"}})


def test_typed_getters():
    assert P.int("a.n", lo=1) == 3
    assert P.float("a.lr", lo=0) == 0.1
    assert P.float("a.n") == 3.0  # ints are numbers
    assert P.bool("a.flag") is True
    assert P.choice("a.name", ["x", "y"]) == "x"
    assert P.list("a.ranks", int, allow=["full"]) == [10, 20, "full"]
    assert P.sub("a").int("n") == 3


@pytest.mark.parametrize("call, key", [
    (lambda: P.int("a.bad"), "a.bad"),
    (lambda: P.int("a.lr"), "a.lr"),
    (lambda: P.int("a.flag"), "a.flag"),  # bools are not ints
    (lambda: P.int("a.n", lo=5), "a.n"),
    (lambda: P.float("a.lr", hi=0.01), "a.lr"),
    (lambda: P.choice("a.name", ["y"]), "a.name"),
    (lambda: P.list("a.ranks", int), "a.ranks"),
    (lambda: P.int("a.missing"), "a.missing"),
    (lambda: P.sub("a").int("bad"), "a.bad"),
])
def test_errors_name_the_key(call, key):
    with pytest.raises(UserError, match=f"'{key}'"):
        call()


def test_default_used_only_when_missing():
    assert P.int("a.none", default=7) == 7
    assert P.int("a.n", default=7) == 3


def test_load_params_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_params(tmp_path / "params.yaml")
    (tmp_path / "params.yaml").write_text("a: [1, 2\n")
    with pytest.raises(UserError, match="YAML"):
        load_params(tmp_path / "params.yaml")


def test_list_default_item_type_is_numbers():
    assert Params({"r": [0.5, 2]}).list("r") == [0.5, 2]
    with pytest.raises(UserError, match="'r'"):
        Params({"r": ["x"]}).list("r")


def test_params_are_read_as_dvc_reads_them(tmp_path):
    # `dvc exp run -S` rewrites params.yaml in YAML 1.2 and drops the quotes around 'yes'/'no';
    # a YAML 1.1 reader would then see booleans in the keyword list.
    f = tmp_path / "params.yaml"
    f.write_text("kws:\n  commands: [yes, no, on, off, up]\n  lr: 1e-3\n")
    p = load_params(f)
    assert p.list("kws.commands", item_type=str) == ["yes", "no", "on", "off", "up"]
    assert p.float("kws.lr") == 1e-3


def test_exclusive_bounds_and_seed():
    p = Params({"lr": 0, "rank": 64, "seed": 2**70, "ok": 0.1})
    with pytest.raises(UserError, match=r"'lr' must be > 0, got 0"):
        p.float("lr", gt=0)
    with pytest.raises(UserError, match=r"'rank' must be < 64, got 64"):
        p.int("rank", lt=64)
    assert p.float("ok", gt=0, lt=1) == 0.1
    with pytest.raises(UserError, match=r"'seed' must be <= 9223372036854775807"):
        p.seed()


def test_unknown_keys_checked_against_dvc_yaml_beside_the_file(tmp_path):
    (tmp_path / "params.yaml").write_text("seed: 0\nsvd:\n  rank: 4\n  rnak: 5\nmnist:\n  sgd: {lr: 1}\n")
    assert load_params(tmp_path / "params.yaml").int("svd.rnak") == 5  # no dvc.yaml: no key check
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  s:\n    matrix:\n      opt: [sgd]\n    cmd: x ${item.opt}\n"
        "    params:\n      - seed\n      - svd.rank\n      - mnist.${item.opt}\n")
    with pytest.raises(UserError, match=r"unknown key 'svd\.rnak' \(did you mean 'svd\.rank'\?\)"):
        load_params(tmp_path / "params.yaml")
    (tmp_path / "params.yaml").write_text("seed: 0\nsvd:\n  rank: 4\nmnist:\n  sgd: {lr: 1}\n")
    assert load_params(tmp_path / "params.yaml").int("svd.rank") == 4  # the matrix template covers mnist.sgd
