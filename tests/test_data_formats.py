"""Low-level formats and every bad-input error of the readers (DataFormatError messages)."""

from __future__ import annotations

import pickle
import zipfile

import numpy as np
import pandas as pd
import pytest

from hdcid.data import (
    DataFormatError,
    events_to_labels,
    pad_or_truncate,
    read_ave,
    read_ave_avvp_test,
    read_avvp,
    read_h5,
    read_llp_csv,
    read_pretrain,
    read_ucf,
    read_vggsound_ucf,
    read_zip_pickle,
    write_h5,
    write_zip_pickle,
)
from hdcid.data.ave import AVE_DIR
from hdcid.data.formats import check_finite
from hdcid.demo.synthetic import write_synthetic_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("syn")
    write_synthetic_corpus(root, seed=3, scale=0.02)
    return root


def fresh(tmp_path):
    write_synthetic_corpus(tmp_path, seed=3, scale=0.02)
    return tmp_path


# --------------------------------------------------------------------------- good paths
def test_pad_or_truncate_repeats_last_row():
    x = np.arange(6, dtype=np.float32).reshape(3, 2)  # rows [0,1] [2,3] [4,5]
    y = pad_or_truncate(x, T=5)
    assert y.tolist() == [[0, 1], [2, 3], [4, 5], [4, 5], [4, 5]]
    assert pad_or_truncate(np.arange(12.0).reshape(12, 1), T=10)[:, 0].tolist() == list(range(10))
    with pytest.raises(DataFormatError, match="0 rows"):
        pad_or_truncate(np.zeros((0, 3)), 10)


def test_zip_last_pkl_member_wins(tmp_path):
    p = tmp_path / "clip.zip"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("a.pkl", pickle.dumps(np.full(2, 1.0)))
        zf.writestr("readme.txt", b"x")
        zf.writestr("b.pkl", pickle.dumps(np.full(2, 7.0)))
    assert read_zip_pickle(p).tolist() == [7.0, 7.0]
    write_zip_pickle(tmp_path / "w.zip", np.eye(2, dtype=np.float32))
    assert np.array_equal(read_zip_pickle(tmp_path / "w.zip"), np.eye(2))


def test_read_h5_fancy_index_keeps_requested_order(tmp_path):
    x = np.arange(20, dtype=np.float64).reshape(10, 2)
    write_h5(tmp_path / "x.h5", "avadataset", x)
    got = read_h5(tmp_path / "x.h5", "avadataset", index=np.array([7, 2, 7, 0]))
    assert got[:, 0].tolist() == [14.0, 4.0, 14.0, 0.0] and got.dtype == np.float64
    small = read_h5(
        tmp_path / "x.h5", "avadataset", index=np.array([9, 1, 5, 3, 8]), out_dtype=np.float32, chunk_rows=2
    )  # three chunks of sorted rows, then reordered
    assert small[:, 1].tolist() == [19.0, 3.0, 11.0, 7.0, 17.0] and small.dtype == np.float32
    with pytest.raises(DataFormatError, match=r"10 rows.*\[0, 10\]"):
        read_h5(tmp_path / "x.h5", "avadataset", index=np.array([0, 10]))


def test_events_to_labels_hand_computed():
    lab = events_to_labels([(0, 3, "A"), (2, 5, "B"), (1, 2, "A")], ["A", "B"], T=6)
    # t:       0  1  2  3  4  5
    assert lab[:, 0].tolist() == [1, 1, 1, 0, 0, 0]
    assert lab[:, 1].tolist() == [0, 0, 1, 1, 1, 0]
    assert lab[:, 2].tolist() == [0, 0, 0, 0, 0, 1]  # background only where nothing is active


# --------------------------------------------------------------------------- bad input
def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(DataFormatError, match=r"not found: .*train_order\.h5"):
        read_ave(tmp_path, "train")
    with pytest.raises(DataFormatError, match=r"feature zip not found: .*nothing\.zip"):
        read_zip_pickle(tmp_path / "nothing.zip")


def test_missing_feature_zip_for_one_clip(tmp_path):
    root = fresh(tmp_path)
    z = sorted((root / "UCF101/feature/video/zip").glob("*.zip"))[0]
    z.unlink()
    with pytest.raises(DataFormatError, match=f"not found: .*{z.name}"):
        read_ucf(root)


def test_wrong_h5_key(tmp_path):
    root = fresh(tmp_path)
    write_h5(root / AVE_DIR / "train_order.h5", "orders", np.arange(3))
    with pytest.raises(DataFormatError, match=r"train_order\.h5: expected HDF5 key 'order', found keys \['orders'\]"):
        read_ave(root, "train")


def test_wrong_h5_shape(tmp_path):
    root = fresh(tmp_path)
    n = read_h5(root / AVE_DIR / "labels.h5", "avadataset").shape[0]
    write_h5(root / AVE_DIR / "labels.h5", "avadataset", np.zeros((n, 10, 29)))
    with pytest.raises(
        DataFormatError, match=r"labels\.h5: key 'avadataset' expected shape \(\*, \*, 11\), found \(\d+, 10, 29\)"
    ):
        read_ave(root, "train")


def test_wrong_h5_dtype(tmp_path):
    root = fresh(tmp_path)
    a = read_h5(root / AVE_DIR / "audio_feature.h5", "avadataset")
    write_h5(root / AVE_DIR / "audio_feature.h5", "avadataset", a.astype(np.float16))
    with pytest.raises(
        DataFormatError, match=r"audio_feature\.h5: key 'avadataset' expected dtype float32 or float64, found float16"
    ):
        read_ave(root, "train")


def test_wrong_zip_shape(tmp_path):
    root = fresh(tmp_path)
    z = sorted((root / "AVVP/feature/video/zip").glob("*.zip"))[0]
    write_zip_pickle(z, np.zeros((9, 7, 7, 32), np.float32))
    with pytest.raises(
        DataFormatError, match=rf"{z.name} \(video features\): expected shape \(10, \*, \*, \*\), found \(9, 7, 7, 32\)"
    ):
        read_avvp(root, "visual")


def test_unknown_class_in_ucf_csv(tmp_path):
    root = fresh(tmp_path)
    csv = root / "feature_extractor/feature_extractor/ucf2vggsound.csv"
    df = pd.read_csv(csv, dtype=str)
    df.loc[3, "category"] = "PlayingGuitar"
    df.to_csv(csv, index=False)
    with pytest.raises(DataFormatError, match=r"ucf2vggsound\.csv: unknown class name 'PlayingGuitar' \(row 3\)"):
        read_ucf(root)


def test_unknown_class_in_ave_avvp_csv(tmp_path):
    root = fresh(tmp_path)
    csv = root / "AVE_AVVP/AVE_AVVP_eval_audio_checked_combined.csv"
    df = pd.read_csv(csv, sep="\t", dtype=str)
    df.loc[0, "event_labels"] = "Nine"  # digit 9 is not one of the 8 shared classes
    df.loc[0, "onset"], df.loc[0, "offset"] = "0", "4"
    df.to_csv(csv, sep="\t", index=False)
    with pytest.raises(DataFormatError, match=r"unknown class name 'Nine'"):
        read_ave_avvp_test(root, "audio")


def test_empty_zip(tmp_path):
    p = tmp_path / "empty.zip"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("features.npy", b"")
    with pytest.raises(
        DataFormatError,
        match=r"empty\.zip: expected a member whose name contains '\.pkl', found members \['features\.npy'\]",
    ):
        read_zip_pickle(p)


def test_nan_in_zip_features(tmp_path):
    root = fresh(tmp_path)
    z = sorted((root / "vggsound40k/feature/audio/zip").glob("vgg*.zip"))[1]
    x = read_zip_pickle(z).copy()
    x[2, 5] = np.nan
    write_zip_pickle(z, x)
    with pytest.raises(
        DataFormatError,
        match=rf"{z.name}: expected finite features, found 1 NaN/inf values \(first at index \(2, 5\)\)",
    ):
        read_vggsound_ucf(root)


def test_inf_in_h5_features(tmp_path):
    root = fresh(tmp_path)
    v = read_h5(root / AVE_DIR / "visual_feature.h5", "avadataset")
    order = read_h5(root / AVE_DIR / "train_order.h5", "order")
    v[order[0], 0, 0, 0, 0] = np.inf
    write_h5(root / AVE_DIR / "visual_feature.h5", "avadataset", v)
    with pytest.raises(DataFormatError, match=r"visual_feature\.h5 key 'avadataset': expected finite"):
        read_ave(root, "train")
    assert np.isfinite(read_ave(root, "test").video).all()  # other splits unaffected


def test_csv_missing_column(tmp_path):
    root = fresh(tmp_path)
    csv = root / "feature_extractor/feature_extractor/vggsound2ucf.csv"
    pd.read_csv(csv, dtype=str).drop(columns=["split"]).to_csv(csv, index=False)
    with pytest.raises(
        DataFormatError,
        match=r"vggsound2ucf\.csv: expected columns \['category', 'video_id', 'split'\], missing \['split'\]",
    ):
        read_vggsound_ucf(root)


def test_llp_mismatched_list_lengths(tmp_path):
    csv = tmp_path / "x.csv"
    csv.write_text("filename\tonset\toffset\tevent_labels\nabcdefghijk_0_10\t0,5\t3\tA,B\n")
    with pytest.raises(
        DataFormatError,
        match=r"row 'abcdefghijk_0_10' expected equal-length onset/offset/event_labels lists, found lengths 2/1/2",
    ):
        read_llp_csv(csv, ["A", "B"])


def test_llp_single_event_rows_stay_strings(tmp_path):
    # every row single-event: pandas would parse ints without dtype=str
    csv = tmp_path / "x.csv"
    csv.write_text("filename\tonset\toffset\tevent_labels\nabcdefghijk_0_10\t2\t4\tB\n")
    names, lab = read_llp_csv(csv, ["A", "B"])
    assert names == ["abcdefghijk_0_10"] and lab[0, :, 1].tolist() == [0, 0, 1, 1, 0, 0, 0, 0, 0, 0]


def test_pretrain_missing_prompt(tmp_path, hash_text):
    root = fresh(tmp_path)
    p = root / "vggsound40k/vggsoundCategories2Prompts.csv"
    df = pd.read_csv(p, dtype=str)
    df.iloc[1:].to_csv(p, index=False)
    with pytest.raises(
        DataFormatError, match=r"expected a prompt row for every category, missing \['spoken and written zero'\]"
    ):
        read_pretrain(root, hash_text)


def test_check_finite_counts():
    x = np.zeros((2, 3))
    x[1, 2] = np.inf
    x[0, 1] = np.nan
    with pytest.raises(DataFormatError, match=r"where: .*found 2 NaN/inf values \(first at index \(0, 1\)\)"):
        check_finite(x, "where")


def test_avvp_bad_annotation_name(corpus):
    with pytest.raises(ValueError, match="annotations must be one of"):
        read_avvp(corpus, "both")


def test_object_pickle_in_zip_is_rejected(tmp_path):
    p = tmp_path / "obj.zip"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("x.pkl", pickle.dumps({"a": 1}))
    with pytest.raises(DataFormatError, match=r"obj\.zip: expected a pickled numpy ndarray, found dict"):
        read_zip_pickle(p)


def test_optional_modality_dropped_when_partially_present(tmp_path):
    root = fresh(tmp_path)
    zips = sorted((root / "AVVP/feature/audio/zip").glob("*.zip"))
    zips[0].unlink()
    vis = read_avvp(root, "visual")  # audio optional for visual annotations
    assert vis.audio is None and vis.video.shape[1:] == (10, 7, 7, 32)
    with pytest.raises(DataFormatError, match=f"feature zip not found: .*{zips[0].name}"):
        read_avvp(root, "audio")
