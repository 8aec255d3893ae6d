"""Installers take the form a user has: MNIST .gz or uncompressed IDX, a CIFAR-10 batches folder, an
extracted Speech Commands folder; each validated, checksums of either MNIST form enforced, nothing
left behind on failure, and one message naming every missing real-data input with its route."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dlsys.core.errors import DataFormatError, DownloadError, MissingDataError
from dlsys.core.params import Params
from dlsys.data import registry
from dlsys.data.cifar10 import load_cifar10, write_cifar_batches
from dlsys.data.idx import write_idx
from dlsys.data.inputs import Placed
from dlsys.data.mnist import FILES, MD5, MD5_IDX, load_mnist, placed_forms
from dlsys.data.registry import Download

DEAD = ("http://127.0.0.1:9/nothing",)  # never contacted when a placed form is found


def _md5(b: bytes) -> str:
    return hashlib.md5(b).hexdigest()


def _mnist_files(tmp_path: Path) -> dict[str, bytes]:
    """Tiny IDX payloads (uncompressed bytes) under the four official names."""
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.integers(0, 256, (12, 28, 28), dtype=np.uint8),
              "y_train": (np.arange(12) % 10).astype(np.uint8),
              "x_test": rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
              "y_test": (np.arange(5) % 10).astype(np.uint8)}
    out = {}
    for key, gz in FILES.items():
        raw = tmp_path / "src" / gz.removesuffix(".gz")
        raw.parent.mkdir(exist_ok=True)
        write_idx(raw, arrays[key], compress=False)
        out[gz] = raw.read_bytes()
    return out


def _tiny_mnist_spec(monkeypatch, payloads: dict[str, bytes]) -> None:
    """The MNIST spec with the tiny files' checksums in place of the published ones (same wiring)."""
    from dlsys.data import mnist

    dls = []
    for gz, raw in payloads.items():
        idx = gz.removesuffix(".gz")
        gz_md5 = _md5(gzip.compress(raw, mtime=0))
        dls.append(Download(gz, DEAD, md5=gz_md5,
                            placed=(Placed(idx, f"uncompressed {idx}", md5=_md5(raw)),
                                    Placed("MNIST/raw/" + idx, f"uncompressed {idx}", md5=_md5(raw)))))
    monkeypatch.setattr(mnist.SPEC, "downloads", dls)


def _p(**groups) -> Params:
    return Params({"data": groups})


def test_published_checksums_of_both_mnist_forms_are_wired():
    for gz in FILES.values():
        forms = placed_forms(gz)
        idx = gz.removesuffix(".gz")
        assert forms[0].path == idx and forms[0].md5 == MD5_IDX[idx]
        assert forms[1].md5 == MD5[gz] and forms[2].md5 == MD5_IDX[idx]
    assert MD5_IDX["train-images-idx3-ubyte"] == "6bbc9ace898e44ae57da46a324031adb"
    assert len(set(MD5_IDX.values()) | set(MD5.values())) == 8


@pytest.mark.parametrize("form", ["gz", "idx", "torchvision"])
def test_mnist_installs_from_either_form(tmp_path, monkeypatch, form):
    payloads = _mnist_files(tmp_path)
    _tiny_mnist_spec(monkeypatch, payloads)
    ext = tmp_path / "data/external/mnist"
    for gz, raw in payloads.items():
        idx = gz.removesuffix(".gz")
        target = {"gz": ext / gz, "idx": ext / idx, "torchvision": ext / "MNIST/raw" / idx}[form]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(gzip.compress(raw, mtime=0) if form == "gz" else raw)
    meta = registry.acquire("mnist", _p(mnist={"source": "real"}), seed=0, root=tmp_path)
    d = load_mnist(tmp_path / "data/raw/mnist")
    assert d.x_train.shape == (12, 28, 28) and d.x_test.shape == (5, 28, 28)
    assert list(d.y_train) == list(np.arange(12) % 10)
    assert set(meta["forms"].values()) == {"gz" if form == "gz" else "idx"}
    assert ("note" in meta) == (form != "gz")
    # stored gzipped under the usual names whatever the form, byte-reproducibly
    for gz, raw in payloads.items():
        assert gzip.decompress((tmp_path / "data/raw/mnist" / gz).read_bytes()) == raw


@pytest.mark.parametrize("form", ["gz", "idx"])
def test_mnist_checksum_mismatch_of_either_form_is_refused(tmp_path, monkeypatch, form):
    payloads = _mnist_files(tmp_path)
    _tiny_mnist_spec(monkeypatch, payloads)
    ext = tmp_path / "data/external/mnist"
    ext.mkdir(parents=True)
    for i, (gz, raw) in enumerate(payloads.items()):
        body = bytearray(raw)
        if i == 2:
            body[-1] ^= 1  # one flipped bit in one file (still a valid IDX file)
        if form == "gz":
            (ext / gz).write_bytes(gzip.compress(bytes(body), mtime=0))
        else:
            (ext / gz.removesuffix(".gz")).write_bytes(bytes(body))
    with pytest.raises(DownloadError, match="t10k-images.*md5 mismatch"):
        registry.acquire("mnist", _p(mnist={"source": "real"}), seed=0, root=tmp_path)
    assert not (tmp_path / "data/raw/mnist").exists()


def _cifar_folder(tmp_path: Path, n_train: int = 50, n_test: int = 10) -> Path:
    rng = np.random.default_rng(1)
    base = tmp_path / "data/external/cifar10"
    write_cifar_batches(base / "cifar-10-batches-py",
                        rng.integers(0, 256, (n_train, 32, 32, 3), dtype=np.uint8), np.arange(n_train) % 10,
                        rng.integers(0, 256, (n_test, 32, 32, 3), dtype=np.uint8), np.arange(n_test) % 10,
                        [f"class{k}" for k in range(10)])
    return base / "cifar-10-batches-py"


def test_cifar_installs_from_an_extracted_folder_and_notes_unpublished_batches(tmp_path):
    _cifar_folder(tmp_path)
    meta = registry.acquire("cifar10", _p(cifar10={"source": "real"}), seed=0, root=tmp_path)
    d = load_cifar10(tmp_path / "data/raw/cifar10")
    assert d.x_train.shape == (50, 32, 32, 3) and d.x_test.shape == (10, 32, 32, 3)
    assert d.class_names[3] == "class3" and d.source == "real"
    assert meta["form"] == "extracted folder" and meta["published_batches"] is False
    assert "differ from the published batches" in meta["note"] and "50 training" in meta["note"]
    on_disk = json.loads((tmp_path / "data/raw/cifar10/dataset.json").read_text())
    assert on_disk["note"] == meta["note"]


def test_cifar_folder_with_a_missing_batch_names_it_and_leaves_nothing(tmp_path):
    folder = _cifar_folder(tmp_path)
    (folder / "data_batch_4").unlink()
    with pytest.raises(DataFormatError, match="data_batch_4"):
        registry.acquire("cifar10", _p(cifar10={"source": "real"}), seed=0, root=tmp_path)
    assert not (tmp_path / "data/raw/cifar10").exists()


def test_cifar_folder_with_a_missing_class_is_refused(tmp_path):
    rng = np.random.default_rng(1)
    base = tmp_path / "data/external/cifar10/cifar-10-batches-py"
    y = np.arange(50) % 9  # class 9 never appears
    write_cifar_batches(base, rng.integers(0, 256, (50, 32, 32, 3), dtype=np.uint8), y,
                        rng.integers(0, 256, (10, 32, 32, 3), dtype=np.uint8), np.arange(10) % 10,
                        [f"c{k}" for k in range(10)])
    with pytest.raises(DataFormatError, match="lack class"):
        registry.acquire("cifar10", _p(cifar10={"source": "real"}), seed=0, root=tmp_path)
    assert not (tmp_path / "data/raw/cifar10").exists()


SC = {"source": "real", "sr": 16000}


def _wav(path: Path, seconds: float = 1.0, sr: int = 16000, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    x = 0.1 * np.random.default_rng(seed).standard_normal(int(seconds * sr))
    sf.write(path, x, sr, subtype="PCM_16")


def _sc_folder(tmp_path: Path) -> Path:
    root = tmp_path / "data/external/speech_commands"
    clips = []
    for w, word in enumerate(["yes", "no", "bed"]):
        for s, spk in enumerate(["aaaa1111", "bbbb2222", "cccc3333"]):
            rel = f"{word}/{spk}_nohash_0.wav"
            _wav(root / rel, seed=10 * w + s)
            clips.append(rel)
    _wav(root / "_background_noise_/white_noise.wav", seconds=3.0, seed=99)
    # the official lists name clips of the whole set; a subset lacks some of them
    (root / "validation_list.txt").write_text("".join(f"{w}/bbbb2222_nohash_0.wav\n" for w in ("yes", "no", "bed"))
                                              + "cat/bbbb2222_nohash_1.wav\n")
    (root / "testing_list.txt").write_text("".join(f"{w}/cccc3333_nohash_0.wav\n" for w in ("yes", "no", "bed")))
    (root / "LICENSE").write_text("CC BY 4.0\n")
    return root


def test_speech_commands_installs_from_an_extracted_subset_folder(tmp_path):
    from dlsys.data.audio.sets import load_speech_commands

    _sc_folder(tmp_path)
    meta = registry.acquire("speech_commands", _p(speech_commands=SC), seed=0, root=tmp_path)
    d = load_speech_commands(tmp_path / "data/raw/speech_commands")
    assert len(d.clips) == 9 and d.background == ["_background_noise_/white_noise.wav"]
    assert meta["split_counts"] == {"train": 3, "validation": 3, "testing": 3}
    assert meta["split_speakers"] == {"train": 1, "validation": 1, "testing": 1}
    assert meta["speaker_disjoint_splits"] is True
    assert "a subset" in meta["note"] and "validation 1" in meta["note"]
    assert d.splits[d.clips.index("no/bbbb2222_nohash_0.wav")] == "validation"
    assert d.splits[d.clips.index("bed/aaaa1111_nohash_0.wav")] == "train"
    assert "cat/" not in (tmp_path / "data/raw/speech_commands/validation_list.txt").read_text()


def test_speech_commands_folder_overlapping_speakers_are_reported(tmp_path):
    root = _sc_folder(tmp_path)
    (root / "testing_list.txt").write_text("yes/bbbb2222_nohash_0.wav\n")  # bbbb2222 also in validation
    meta = registry.acquire("speech_commands", _p(speech_commands=SC), seed=0, root=tmp_path)
    assert meta["speaker_disjoint_splits"] is False and "more than one split" in meta["note"]


@pytest.mark.parametrize("damage", ["no_testing_list", "bad_rate", "link"])
def test_speech_commands_folder_damage_is_one_line_and_leaves_nothing(tmp_path, damage):
    root = _sc_folder(tmp_path)
    if damage == "no_testing_list":
        (root / "testing_list.txt").unlink()
        match = "testing_list.txt"
    elif damage == "bad_rate":
        _wav(root / "yes/dddd4444_nohash_0.wav", sr=8000)
        match = "16000 Hz"
    else:
        outside = tmp_path / "outside.wav"
        _wav(outside)
        (root / "no/eeee5555_nohash_0.wav").symlink_to(outside)
        match = "link"
    with pytest.raises(DataFormatError, match=match):
        registry.acquire("speech_commands", _p(speech_commands=SC), seed=0, root=tmp_path)
    assert not (tmp_path / "data/raw/speech_commands").exists()


def test_preflight_names_every_missing_input_with_its_route(tmp_path, monkeypatch):
    from dlsys.data.preflight import main

    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text(
        "seed: 0\ndata:\n  mnist: {source: synthetic}\n  sevens: {source: synthetic}\n"
        "  speakers: {source: synthetic, librispeech: {subset: train-clean-100}}\n")
    Path("real.yaml").write_text("data:\n  mnist: {source: real}\n  sevens: {source: real}\n"
                                 "  speakers: {source: librispeech}\n")
    assert main(["real.yaml"]) == 1
    from dlsys.data.preflight import missing_inputs, merged
    from dlsys.core.params import read_yaml

    items = missing_inputs(Params(merged(read_yaml(Path("params.yaml").read_text()),
                                         read_yaml(Path("real.yaml").read_text()))))
    text = "\n".join(" ".join(i) for i in items)
    for gz in FILES.values():  # every MNIST file, with its URL and both forms
        assert gz in text
    assert "t10k-labels-idx1-ubyte (uncompressed" in text
    assert "tr7.pkl" in text and "te7.pkl" in text and "course materials" in text
    assert "openslr.org/resources/12/train-clean-100.tar.gz" in text and "2a93770f6d5c6c964bc36631d331a522" in text
    assert len(items) == 4 + 2 + 1
    # with everything placed, nothing is missing
    ext = Path("data/external")
    for gz in FILES.values():
        (ext / "mnist").mkdir(parents=True, exist_ok=True)
        (ext / "mnist" / gz).write_bytes(b"x")
    for f in ("tr7.pkl", "te7.pkl"):
        (ext / "sevens").mkdir(exist_ok=True)
        (ext / "sevens" / f).write_bytes(b"x")
    (ext / "librispeech/LibriSpeech/train-clean-100").mkdir(parents=True)
    assert main(["real.yaml"]) == 0


def test_lecture_selection_keeps_commands_and_a_share_of_unknown_per_split():
    from dlsys.data.audio.speech_commands import lecture_selection

    words = ["yes"] * 20 + ["no"] * 10 + ["bed"] * 50 + ["cat"] * 50
    splits = (["train"] * 15 + ["testing"] * 5) + ["train"] * 10 + ["train"] * 40 + ["testing"] * 10 + ["train"] * 50
    keep = lecture_selection(words, splits, ["yes", "no"], 0.1, np.random.default_rng(0))
    w, s = np.array(words), np.array(splits)
    assert keep[np.isin(w, ["yes", "no"])].all()  # every command clip
    unknown = keep & ~np.isin(w, ["yes", "no"])
    assert unknown[s == "train"].sum() == 3 and unknown[s == "testing"].sum() == 1  # ceil(0.1 × 25), ceil(0.1 × 5)
    again = lecture_selection(words, splits, ["yes", "no"], 0.1, np.random.default_rng(0))
    assert (keep == again).all()
    everything = lecture_selection(words, splits, ["yes", "no"], 100.0, np.random.default_rng(0))
    assert everything.all()  # a share above the pool keeps the whole pool, never more


def test_no_code_or_test_reads_the_calibration_kit():
    """Real data enter only through data/external/: nothing may point at the kit's own folder."""
    root = Path(__file__).resolve().parents[2]
    needles = ("../" + "shared", "/shared/" + "realdata", "realdata" + "/")
    offenders = []
    for folder in ("src", "stages", "tests", "bench"):
        for path in (root / folder).rglob("*.py"):
            text = path.read_text(errors="replace")
            offenders += [f"{path.relative_to(root)}: {n}" for n in needles if n in text]
    for name in ("Makefile", "dvc.yaml", "params.yaml", "params-real.yaml"):
        text = (root / name).read_text()
        offenders += [f"{name}: {n}" for n in needles if n in text]
    assert not offenders
