"""Issue 11: bad input, faults and untrusted files. Each test is one case of the issue: it failed
(silent wrong result, unclear error, code run, file left behind) before the fix and passes after.
The closing table case -> before -> after is in data/README.md ("What hdcid checks").

New names are imported inside the tests, so each test fails on its own against the old code."""

from __future__ import annotations

import io
import os
import pickle
import shutil
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from hdcid.config import ModelConfig, TrainConfig
from hdcid.data import DataFormatError, read_ave, read_llp_csv, read_pretrain, write_ave, write_zip_pickle
from hdcid.data.ave import AVE_DIR
from hdcid.data.pretrain import CSV_NAME, PRETRAIN_DIR
from hdcid.model import network
from hdcid.model.checkpoint import load_checkpoint, save_checkpoint
from hdcid.model.integrity import CheckpointError
from hdcid.model.network import CrossModalModel
from hdcid.model.original_checkpoint import export_original_checkpoint, load_original_checkpoint
from hdcid.train import Pretrainer
from hdcid.train_folder import list_checkpoints


# ----------------------------------------------------------------------------- helpers
@pytest.fixture
def small_set(synthetic_clipset):
    return synthetic_clipset.subset(np.arange(16))


def _tiny_train(**kw) -> TrainConfig:
    base = dict(epochs=2, batch_size=8, max_steps_per_epoch=1)
    base.update(kw)
    return TrainConfig.tiny("dcid", **base)


def _ave_files(root: Path, labels_fix=None, classes=("a", "b", "c")) -> None:
    n, K = 6, len(classes)
    g = np.random.default_rng(0)
    labels = np.zeros((n, 10, K + 1))
    labels[:, :, K] = 1
    labels[np.arange(n), 2:5, K] = 0
    labels[np.arange(n), 2:5, np.arange(n) % K] = 1
    if labels_fix is not None:
        labels_fix(labels)
    write_ave(
        root,
        g.uniform(size=(n, 10, 7, 7, 4)),
        g.normal(size=(n, 10, 6)),
        labels,
        {"train": np.array([0, 1, 2, 3]), "test": np.array([4, 5])},
        classes=list(classes),
    )


def _llp_csv(path: Path, onset: str, offset: str, labels: str = "One") -> Path:
    path.write_text(
        f"filename\tonset\toffset\tevent_labels\nclipA_0_10\t{onset}\t{offset}\t{labels}\n", encoding="utf-8"
    )
    return path


def _zip_raw(path: Path, payload: bytes, member: str = "x.pkl") -> Path:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(member, payload)
    path.write_bytes(buf.getvalue())
    return path


def _saved(tmp_path: Path, name: str = "ck.pt") -> Path:
    torch.manual_seed(0)
    model = CrossModalModel(ModelConfig.tiny("dcid"))
    return save_checkpoint(
        tmp_path / name,
        model,
        train_cfg=TrainConfig.tiny("dcid"),
        optimizers={},
        step=3,
        epoch=1,
        history=[{"step": 1, "total": 1.5}],
        rng_state=None,
    )


# ============================================================================= non-finite values
def test_pretraining_refuses_nan_features_and_writes_nothing(small_set, tmp_path):
    small_set.audio[3, 4, 5] = np.nan
    with pytest.raises(
        ValueError, match=rf"audio features hold NaN/inf in 1 clip\(s\), first clip id '{small_set.ids[3]}'"
    ):
        Pretrainer(ModelConfig.tiny("dcid"), _tiny_train(), small_set, tmp_path).fit(progress=False)
    assert list_checkpoints(tmp_path) == []


def test_training_stops_at_the_first_nonfinite_loss_term(small_set, tmp_path):
    from hdcid.train import NonFiniteTrainingError

    pre = Pretrainer(ModelConfig.tiny("dcid"), _tiny_train(), small_set, tmp_path)
    calls = []

    def poison(module, inputs, output):  # the audio reconstruction turns NaN on the 2nd step
        calls.append(1)
        return output * float("nan") if len(calls) >= 2 else output

    pre.model.decoder.level1["audio"].register_forward_hook(poison)
    with pytest.raises(NonFiniteTrainingError) as err:
        pre.fit(progress=False)
    msg = str(err.value)
    assert "step 2 (epoch 1)" in msg and "'rec_a'" in msg and "batch clip ids [" in msg
    perm = torch.randperm(16, generator=torch.Generator().manual_seed(43 * 1_000_003 + 1)).numpy()[:8]
    assert str([small_set.ids[i] for i in perm]) in msg  # exactly the ids of the failing batch
    assert [p.name for p in list_checkpoints(tmp_path)] == ["epoch-0.pt"]  # nothing from the bad state
    assert "latest good one: " in msg and "epoch-0.pt" in msg


def test_training_stops_at_a_nonfinite_gradient(small_set, tmp_path):
    from hdcid.train import NonFiniteTrainingError

    pre = Pretrainer(ModelConfig.tiny("dcid"), _tiny_train(epochs=1), small_set, tmp_path)
    before = {k: v.clone() for k, v in pre.model.decoder.state_dict().items()}
    w = next(pre.model.decoder.parameters())
    w.register_hook(lambda g: g * float("inf"))  # finite loss, infinite gradient
    with pytest.raises(NonFiniteTrainingError, match=r"step 1 \(epoch 0\): non-finite gradient norm of 'decoder'"):
        pre.fit(progress=False)
    assert list_checkpoints(tmp_path) == []
    after = pre.model.decoder.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the optimizer step never ran


def test_encode_refuses_nan_input():
    model = CrossModalModel(ModelConfig.tiny("dcid")).eval()
    audio = torch.randn(2, 10, 128)
    audio[1, 3, 0] = float("nan")
    with pytest.raises(ValueError, match=r"audio features hold NaN/inf in 1 segment\(s\) \(first: clip 1, segment 3\)"):
        model.encode(audio, "audio")
    audio[1, 3, 0], audio[0, 5, 1], audio[1, 3, 1] = float("inf"), float("-inf"), float("inf")  # the sum is NaN
    with pytest.raises(ValueError, match=r"NaN/inf in 2 segment\(s\) \(first: clip 0, segment 5\)"):
        model.encode(audio, "audio")
    network._check_finite_input(torch.full((2, 10, 128), 3e38), "audio")  # finite values whose sum overflows: no error


def _rehash(obj: dict) -> dict:
    """Give an edited checkpoint dict a matching content hash (a consistently written bad file)."""
    try:
        from hdcid.model.integrity import content_hash
    except ImportError:  # the code before issue 11 had no hash
        return obj
    obj["content_sha256"] = content_hash(obj)
    return obj


@pytest.mark.parametrize("bs", [0, -3, 2.5])
def test_encode_batch_size_must_be_positive(bs):
    model = CrossModalModel(ModelConfig.tiny("dcid")).eval()
    with pytest.raises(ValueError, match=rf"encode: batch_size must be a positive int or None, got {bs}"):
        model.encode(torch.randn(4, 10, 128), "audio", batch_size=bs)


def test_nan_code_row_in_a_checkpoint_is_refused(tmp_path):
    path = _saved(tmp_path)
    obj = torch.load(path, weights_only=True)
    obj["model_state"]["encoder.Cross_quantizer.embedding"][5] = float("nan")
    torch.save(_rehash(obj), path)
    with pytest.raises(CheckpointError, match=r"Cross_quantizer\.embedding has 64 NaN/inf values in 1 row"):
        load_checkpoint(path)
    model = CrossModalModel(ModelConfig.tiny("dcid"))
    model.encoder.Cross_quantizer.embedding[7, :3] = float("inf")
    orig = export_original_checkpoint(tmp_path / "orig.pt", model, epoch=2)
    with pytest.raises(CheckpointError, match=r"(?s)'Encoder_parameters' holds non-finite.*embedding has 3 NaN/inf"):
        load_original_checkpoint(orig)


def test_toc_refuses_a_nan_codebook_entry():
    from hdcid.toc import toc_select

    E = torch.randn(16, 8, dtype=torch.float64)
    E[4, 2] = float("nan")
    with pytest.raises(ValueError, match=r"NaN/inf in 1 code row\(s\) \(first: code 4\)"):
        toc_select(E, 4, 1, 1)


# ============================================================================= labels
@pytest.mark.parametrize(
    "fix, match",
    [
        (lambda lab: lab.__setitem__((2, 3, 0), np.nan), r"labels\.h5 .*NaN/inf values \(first at row"),
        (lambda lab: lab.__setitem__((1, 0, 1), 7.0), r"labels in \[0, 1\].*7\.0"),
        (lambda lab: lab.__setitem__((0, 6), 0.0), r"all-zero segments \(first at row 0, segment 6\)"),
    ],
)
def test_ave_labels_are_validated(tmp_path, fix, match):
    _ave_files(tmp_path, fix)
    with pytest.raises(DataFormatError, match=match):
        read_ave(tmp_path, "train")


@pytest.mark.parametrize("bad, shown", [(np.nan, "nan"), (7.0, "7.0")])
def test_pretraining_relevance_values_are_validated(synthetic_root, tmp_path, hash_text, bad, shown):
    shutil.copytree(synthetic_root / PRETRAIN_DIR, tmp_path / PRETRAIN_DIR)
    ids = pd.read_csv(tmp_path / PRETRAIN_DIR / CSV_NAME, dtype=str)["video_id"].tolist()
    for i, vid in enumerate(ids):
        rel = np.ones(10, dtype=np.float32)
        if i == 2:
            rel[4] = bad
        write_zip_pickle(tmp_path / PRETRAIN_DIR / "label" / "zip" / f"{vid}.zip", rel)
    with pytest.raises(
        DataFormatError, match=rf"{ids[2]}\.zip: expected segment relevance in \[0, 1\].*{shown} at segment 4"
    ):
        read_pretrain(tmp_path, hash_text)


@pytest.mark.parametrize(
    "onset, offset, match",
    [
        ("5", "3", r"offset 3 <= onset 5"),
        ("2.5", "4", r"onset '2\.5'; expected whole seconds"),
        ("-1", "4", r"spans \[-1, 4\); expected 0 <= onset < offset <= 10"),
        ("8", "12", r"spans \[8, 12\); expected 0 <= onset < offset <= 10"),
    ],
)
def test_avvp_event_spans_are_validated(tmp_path, onset, offset, match):
    with pytest.raises(DataFormatError, match=match):
        read_llp_csv(_llp_csv(tmp_path / "x.csv", onset, offset), ["One", "Two"])


def test_avvp_whole_second_floats_still_read(tmp_path):
    _, labels = read_llp_csv(_llp_csv(tmp_path / "x.csv", "2.0", "4"), ["One", "Two"])
    assert labels[0, :, 0].tolist() == [0, 0, 1, 1, 0, 0, 0, 0, 0, 0]


def test_ave_empty_or_repeating_split_is_refused(tmp_path):
    from hdcid.data import write_h5

    _ave_files(tmp_path)
    write_h5(tmp_path / AVE_DIR / "val_order.h5", "order", np.zeros(0, dtype=np.int64))
    with pytest.raises(DataFormatError, match=r"val_order\.h5: key 'order' is empty"):
        read_ave(tmp_path, "val")
    write_h5(tmp_path / AVE_DIR / "val_order.h5", "order", np.array([1, 2, 1]))
    with pytest.raises(DataFormatError, match=r"lists 1 clips more than once \(first: 1\)"):
        read_ave(tmp_path, "val")


# ============================================================================= settings
@pytest.mark.parametrize(
    "value, expected",
    [
        ("1", True),
        ("yes", True),
        ("TRUE", True),
        ("on", True),
        ("0", False),
        ("false", False),
        ("no", False),
        ("", False),
    ],
)
def test_hdcid_quick_is_parsed_one_way(monkeypatch, value, expected):
    from hdcid import runner
    from hdcid.utils import is_quick

    monkeypatch.setenv("HDCID_QUICK", value)
    seen = {}
    monkeypatch.setattr(
        runner, "run_all", lambda quick, only, timeout, record=False: [seen.setdefault("quick", quick)][:0]
    )
    runner.main([])
    assert is_quick() is expected and seen["quick"] is expected  # runner and is_quick agree


def test_hdcid_quick_rejects_non_booleans(monkeypatch, capsys):
    from hdcid import runner
    from hdcid.utils import is_quick

    monkeypatch.setenv("HDCID_QUICK", "banana")
    with pytest.raises(ValueError, match=r"environment variable HDCID_QUICK must be a boolean.*'banana'"):
        is_quick()
    monkeypatch.setattr(runner, "run_all", lambda *a: pytest.fail("must not run"))
    with pytest.raises(SystemExit) as ex:
        runner.main([])
    assert ex.value.code == 2 and "HDCID_QUICK must be a boolean" in capsys.readouterr().err


def test_start_with_a_mistyped_data_root_is_an_error(tmp_path, monkeypatch):
    from hdcid import notebook

    monkeypatch.setenv("HDCID_DEMO_ROOT", str(tmp_path / "demo"))
    typo = tmp_path / "demo_typo"
    with pytest.raises(FileNotFoundError, match="Only the default demo location"):
        notebook.start("00_tour", quick=True, data_root=typo, demo_scale=0.01, verbose=False)
    assert not typo.exists()


def test_build_scale_must_be_positive(tmp_path, capsys):
    from hdcid.demo.build import build_demo, main

    with pytest.raises(SystemExit) as ex:
        main(["--root", str(tmp_path / "x"), "--scale", "-1"])
    assert ex.value.code == 2 and "--scale must be a positive number" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    with pytest.raises(ValueError, match=r"scale=\.\.\.\) must be a positive number.*'big'"):
        build_demo(tmp_path / "y", scale="big")
    assert not (tmp_path / "y").exists()


# ============================================================================= unclear errors
def test_zip_with_an_empty_array_names_the_file(tmp_path):
    from hdcid.data.avvp import read_zip_features

    write_zip_pickle(tmp_path / "a.zip", np.ones((10, 128), np.float32))
    write_zip_pickle(tmp_path / "b.zip", np.zeros((0, 128), np.float32))
    with pytest.raises(DataFormatError, match=r"b\.zip: expected audio features \(T, A\) with T >= 1.*\(0, 128\)"):
        read_zip_features(tmp_path, ["a", "b"], "audio", pad=True)


def test_llp_csv_with_only_a_header_says_so(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("filename\tonset\toffset\tevent_labels\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"h\.csv: expected at least one data row.*only a header"):
        read_llp_csv(path, ["One"])


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "224", True])
def test_toc_choose_channel_must_be_an_integer(value):
    from hdcid.toc import TOCSettings

    with pytest.raises(ValueError, match=r"choose_channel must be a non-negative integer"):
        TOCSettings(value, 1, 1)


def test_checkpoint_epoch_must_be_an_integer(tmp_path):
    model = CrossModalModel(ModelConfig.tiny("dcid"))
    path = export_original_checkpoint(tmp_path / "o.pt", model)
    obj = torch.load(path, weights_only=True)
    obj["epoch"] = "five"
    torch.save(obj, path)
    with pytest.raises(CheckpointError, match=r"o\.pt: key 'epoch' must be an integer, found str 'five'"):
        load_original_checkpoint(path)


def test_a_mis_shaped_size_source_tensor_is_blamed_by_name(tmp_path):
    model = CrossModalModel(ModelConfig.tiny("dcid"))
    path = export_original_checkpoint(tmp_path / "o.pt", model)
    obj = torch.load(path, weights_only=True)
    key = "audio_self_att.affine_matrix.weight"  # hidden_dim and audio_dim were read from it alone
    obj["Encoder_parameters"][key] = torch.zeros(63, 128, dtype=torch.float64)
    torch.save(obj, path)
    with pytest.raises(CheckpointError) as err:
        load_original_checkpoint(path)
    msg = str(err.value)
    assert f"1 keys with the wrong shape: {key} expected [64, 128] found [63, 128]" in msg
    assert "missing keys" not in msg and "unknown keys" not in msg
    assert f"hidden_dim = 64 by majority; disagreeing: {key} axis 0 says 63" in msg


def test_batch_size_zero_and_other_bad_train_settings():
    for bad, match in [
        (dict(batch_size=0), "batch_size must be >= 1, got 0"),
        (dict(seed="abc"), "seed must be an int, got str 'abc'"),
        (dict(lr=float("nan")), "lr must be a finite number"),
        (dict(epochs=2.5), "epochs must be an int"),
    ]:
        with pytest.raises(ValueError, match=match):
            TrainConfig.tiny("dcid", **bad)


def test_start_demo_scale_and_seed_are_validated(tmp_path, monkeypatch):
    from hdcid import notebook

    monkeypatch.setenv("HDCID_DEMO_ROOT", str(tmp_path / "demo"))
    with pytest.raises(ValueError, match=r"demo_scale=\.\.\.\) must be a positive number.*'big'"):
        notebook.start("00_tour", quick=True, demo_scale="big", verbose=False)
    with pytest.raises(ValueError, match=r"seed=\.\.\.\) must be an integer in \[0, 2\*\*32\), got str 'abc'"):
        notebook.start("00_tour", quick=True, seed="abc", verbose=False)
    with pytest.raises(ValueError, match=r"quick=\.\.\.\) must be a boolean"):
        notebook.start("00_tour", quick="no way", verbose=False)
    assert not (tmp_path / "demo").exists()  # nothing built before the settings were checked


def test_one_odd_feature_width_names_the_file(tmp_path):
    from hdcid.data.avvp import read_zip_features

    for i in "abcd":
        write_zip_pickle(tmp_path / f"{i}.zip", np.ones((10, 64 if i == "c" else 128), np.float32))
    with pytest.raises(DataFormatError, match=r"c\.zip: expected audio features of shape \(10, 128\) like a\.zip"):
        read_zip_features(tmp_path, list("abcd"), "audio", pad=True)


def test_ave_without_categories_txt_says_what_to_write(tmp_path):
    _ave_files(tmp_path)
    (tmp_path / AVE_DIR / "categories.txt").unlink()
    with pytest.raises(
        DataFormatError,
        match=r"categories\.txt not found.*28 standard AVE classes.*4 label "
        r"columns; write categories\.txt with the 3 class names",
    ):
        read_ave(tmp_path, "train")


def test_resume_with_other_configs_lists_only_the_differences(small_set, tmp_path):
    mc = ModelConfig.tiny("dcid")
    Pretrainer(mc, _tiny_train(epochs=1), small_set, tmp_path).fit(progress=False)
    with pytest.raises(CheckpointError) as err:
        Pretrainer(mc.replace(n_codes=32), _tiny_train(epochs=1, lr=0.01), small_set, tmp_path).fit(progress=False)
    diff = str(err.value).split("Differences (stored -> wanted):\n")[1].splitlines()
    assert diff == [f"  ModelConfig.n_codes: {mc.n_codes} -> 32", "  TrainConfig.lr: 0.001 -> 0.01"]
    assert len(str(err.value)) < 400


def test_a_finished_run_can_be_extended_to_more_epochs(small_set, tmp_path):
    mc = ModelConfig.tiny("dcid")
    Pretrainer(mc, _tiny_train(epochs=1), small_set, tmp_path / "ext").fit(progress=False)
    extended = Pretrainer(mc, _tiny_train(epochs=2), small_set, tmp_path / "ext").fit(progress=False)
    straight = Pretrainer(mc, _tiny_train(epochs=2), small_set, tmp_path / "straight").fit(progress=False)
    assert [p.name for p in extended.checkpoints] == ["epoch-0.pt", "epoch-1.pt"]
    assert extended.history.equals(straight.history)
    a, b = extended.model.state_dict(), straight.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(CheckpointError, match=r"TrainConfig\.epochs: 2 -> 1"):  # shrinking is refused
        Pretrainer(mc, _tiny_train(epochs=1), small_set, tmp_path / "ext").fit(progress=False)


# ============================================================================= untrusted files
class _Evil:
    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_a_feature_pickle_cannot_run_code(tmp_path):
    from hdcid.data import read_zip_pickle

    marker = tmp_path / "pwned"
    path = _zip_raw(tmp_path / "evil.zip", pickle.dumps(_Evil(marker), protocol=4), "evil.pkl")
    with pytest.raises(DataFormatError, match=r"evil\.zip.*refusing to unpickle (posix|nt)\.mkdir"):
        read_zip_pickle(path)
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_feature_pickles_of_every_protocol_still_read(tmp_path, protocol):
    from hdcid.data import read_zip_pickle

    x = np.arange(24, dtype=np.float64).reshape(2, 3, 4)
    path = _zip_raw(tmp_path / "f.zip", pickle.dumps(x, protocol=protocol))
    np.testing.assert_array_equal(read_zip_pickle(path), x)


def test_checkpoints_stay_weights_only(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"format": "hdcid-checkpoint", "evil": _Evil(marker)}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="cannot be read as a torch checkpoint"):
        load_checkpoint(tmp_path / "evil.pt")
    assert not marker.exists()


def test_zeroed_bytes_in_a_checkpoint_are_detected(tmp_path):
    path = _saved(tmp_path)
    data = bytearray(path.read_bytes())
    emb = torch.load(path, weights_only=True)["model_state"]["encoder.Cross_quantizer.embedding"]
    at = bytes(data).find(emb.numpy().tobytes()[:256])
    assert at > 0  # the codebook's bytes are stored verbatim in the zip
    data[at + 1024 : at + 1088] = bytes(64)  # 64 bytes zeroed in the middle of the tensor
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"content hash mismatch"):
        load_checkpoint(path)


def test_a_checkpoint_without_hash_loads_with_a_warning_and_can_be_upgraded(tmp_path):
    from hdcid.model.checkpoint import add_content_hash

    path = _saved(tmp_path)
    obj = torch.load(path, weights_only=True)
    del obj["content_sha256"]
    obj["version"] = 1
    torch.save(obj, path)  # as written by format version 1
    with pytest.warns(UserWarning, match="has no content hash"):
        ck = load_checkpoint(path)
    assert ck["epoch"] == 1
    add_content_hash(path)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_checkpoint(path)["version"] == 2


def test_stale_temporaries_of_the_same_target_are_removed(tmp_path):
    stale = tmp_path / ".ck.pt.k1ll3d.tmp"  # what a SIGKILL mid-write leaves
    stale.write_bytes(b"x" * 1000)
    old = time.time() - 60
    os.utime(stale, (old, old))
    newer = tmp_path / ".ck.pt.writing.tmp"  # a concurrent writer's file, newer than our write
    newer.write_bytes(b"y")
    future = time.time() + 60
    os.utime(newer, (future, future))
    other = tmp_path / ".other.pt.k1ll3d.tmp"  # another target's temporary
    other.write_bytes(b"z")
    os.utime(other, (old, old))
    _saved(tmp_path)
    assert not stale.exists() and newer.exists() and other.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".ck.pt.writing.tmp", ".other.pt.k1ll3d.tmp", "ck.pt"]


def test_temporaries_of_running_writers_are_kept_those_of_ended_ones_removed(tmp_path):
    """A temporary tagged with a process id is stale only when that process has ended, whatever
    its age: this process's own (another thread's write) and a running child's are kept."""
    import subprocess
    import sys

    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        old = time.time() - 3600
        tmps = {
            who: tmp_path / f".ck.pt.{pid}-abc123.tmp"
            for who, pid in (("self", os.getpid()), ("running", running.pid), ("ended", ended.pid))
        }
        for p in tmps.values():
            p.write_bytes(b"x")
            os.utime(p, (old, old))
        _saved(tmp_path)
        assert tmps["self"].exists() and tmps["running"].exists() and not tmps["ended"].exists()
    finally:
        running.kill()
        running.wait()


def test_concurrent_writers_of_one_target_in_threads(tmp_path):
    """Threads saving one target at once: no write fails (an earlier rule removed a concurrent
    writer's finished but not yet renamed temporary), the target holds one complete write, no
    temporary is left and the umask is unchanged."""
    from concurrent.futures import ThreadPoolExecutor

    from hdcid.utils import atomic_torch_save

    target, mask = tmp_path / "t.pt", os.umask(0o022)
    try:

        def write(k):
            for i in range(100):
                atomic_torch_save(torch.full((2000,), float(k * 100 + i)), target)

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(write, range(4)))
        assert os.umask(0o022) == 0o022
    finally:
        os.umask(mask)
    t = torch.load(target, weights_only=True)
    assert t.shape == (2000,) and bool((t == t[0]).all())
    assert list(tmp_path.glob(".t.pt.*.tmp")) == []


@pytest.mark.slow
def test_a_save_killed_with_sigkill_leaves_no_temporary_after_the_next_save(tmp_path):
    """The real fault: SIGKILL a process in the middle of atomic saves, then save once more."""
    import signal
    import subprocess
    import sys

    from hdcid.utils import atomic_torch_save

    target = tmp_path / "ck.pt"
    code = (
        "import sys, torch; from hdcid.utils import atomic_torch_save; t = torch.zeros(4_000_000); "
        "print('go', flush=True)\nwhile True: atomic_torch_save(t, sys.argv[1])"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    for attempt in range(6):  # a kill lands mid-write most of the time; retry until one did
        proc = subprocess.Popen([sys.executable, "-c", code, str(target)], stdout=subprocess.PIPE, env=env)
        assert proc.stdout.readline().strip() == b"go"
        time.sleep(0.3 + 0.07 * attempt)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        if list(tmp_path.glob(".ck.pt.*.tmp")):
            break
    left = list(tmp_path.glob(".ck.pt.*.tmp"))
    if not left:
        pytest.skip("no kill landed mid-write in 6 tries")
    atomic_torch_save(torch.ones(3), target)
    assert list(tmp_path.glob(".ck.pt.*.tmp")) == []
    assert torch.equal(torch.load(target, weights_only=True), torch.ones(3))
