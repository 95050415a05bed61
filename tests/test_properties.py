"""Property-based tests (hypothesis) for the readers and TOC: random shapes, dtypes, NaN positions,
event spans and budgets either round-trip exactly or raise `DataFormatError` / `ValueError`, never
anything else (issue 11). ~10 s on a 2-core CPU."""

from __future__ import annotations

import pickle
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

from hdcid.data import DataFormatError, read_h5, read_llp_csv, read_zip_pickle, write_h5  # noqa: E402
from hdcid.data.avvp import read_zip_features  # noqa: E402
from hdcid.data.formats import pad_or_truncate  # noqa: E402
from hdcid.toc import toc_select  # noqa: E402

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DTYPES = st.sampled_from(
    [np.float16, np.float32, np.float64, np.int8, np.int64, np.uint8, np.bool_, np.complex64, "U3", "S2"]
)


def _array(dtype, max_dims=4, max_side=5):
    return hnp.arrays(
        dtype, hnp.array_shapes(min_dims=0, max_dims=max_dims, min_side=0, max_side=max_side), elements=None
    )


@st.composite
def arrays_with_nans(draw, max_dims=4, max_side=5):
    """A random-dtype array; for float dtypes some entries are set to NaN or inf."""
    x = draw(_array(draw(DTYPES), max_dims, max_side))
    if x.dtype.kind == "f" and x.size:
        flat = x.reshape(-1).copy()
        for i in draw(st.lists(st.integers(0, x.size - 1), max_size=3)):
            flat[i] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
        x = flat.reshape(x.shape)
    return x


def _zip(path: Path, payload: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{path.stem}.pkl", payload)
    return path


@SETTINGS
@given(x=arrays_with_nans(), protocol=st.integers(2, 5))
def test_zip_pickle_round_trips_numeric_arrays_or_raises(x, protocol):
    with tempfile.TemporaryDirectory() as d:
        path = _zip(Path(d) / "f.zip", pickle.dumps(x, protocol=protocol))
        try:
            y = read_zip_pickle(path)
        except DataFormatError:
            assert not (np.issubdtype(x.dtype, np.number) or x.dtype == bool)
            return
        assert y.dtype == x.dtype and y.shape == x.shape
        np.testing.assert_array_equal(y, x)


@SETTINGS
@given(
    payload=st.one_of(
        st.binary(max_size=64),
        st.recursive(
            st.one_of(st.none(), st.integers(), st.floats(), st.text(max_size=3)),
            lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=2), c, max_size=3),
            max_leaves=6,
        ).map(pickle.dumps),
    )
)
def test_zip_pickle_of_anything_else_raises_data_format_error(payload):
    with tempfile.TemporaryDirectory() as d:
        with pytest.raises(DataFormatError):
            read_zip_pickle(_zip(Path(d) / "f.zip", payload))


@SETTINGS
@given(
    rows=st.lists(st.tuples(st.integers(0, 14), st.sampled_from([3, 4]), st.booleans()), min_size=1, max_size=4),
    modality=st.sampled_from(["audio", "video"]),
)
def test_zip_features_stack_padded_rows_or_raise(rows, modality):
    """Random T (0..14), widths and NaN flags: a stack equal to pad_or_truncate of each file, or
    DataFormatError whenever any file is empty, of another width, or not finite."""
    g = np.random.default_rng(0)
    arrays = []
    with tempfile.TemporaryDirectory() as d:
        for i, (t, w, nan) in enumerate(rows):
            shape = (t, w) if modality == "audio" else (t, 2, 2, w)
            x = g.normal(size=shape).astype(np.float32)
            if nan and x.size:
                x.reshape(-1)[0] = np.nan
            arrays.append(x)
            with zipfile.ZipFile(Path(d) / f"c{i}.zip", "w") as zf:
                zf.writestr("c.pkl", pickle.dumps(x))
        bad = (
            any(x.shape[0] == 0 for x in arrays)
            or len({x.shape[1:] for x in arrays}) > 1
            or any(not np.isfinite(x).all() for x in arrays)
        )
        try:
            out = read_zip_features(Path(d), [f"c{i}" for i in range(len(rows))], modality, pad=True)
        except DataFormatError:
            assert bad
            return
        assert not bad
        np.testing.assert_array_equal(out, np.stack([pad_or_truncate(x, 10) for x in arrays]))


@SETTINGS
@given(
    x=arrays_with_nans(max_dims=3),
    want=st.lists(st.one_of(st.none(), st.integers(0, 5)), max_size=3),
    index=st.one_of(st.none(), st.lists(st.integers(-2, 6), max_size=4)),
)
def test_read_h5_returns_the_rows_or_raises(x, want, index):
    if x.dtype.kind == "U":
        return  # h5py cannot store numpy unicode arrays (a writer-side limit, not a reader case)
    with tempfile.TemporaryDirectory() as d:
        path = write_h5(Path(d) / "f.h5", "k", x)
        idx = None if index is None else np.asarray(index, dtype=np.int64)
        try:
            y = read_h5(path, "k", shape=want or None, index=idx)
        except DataFormatError:
            shape_bad = bool(want) and (
                len(want) != x.ndim or any(s is not None and s != a for s, a in zip(want, x.shape))
            )
            index_bad = idx is not None and idx.size > 0 and x.ndim > 0 and (idx.min() < 0 or idx.max() >= x.shape[0])
            assert shape_bad or index_bad or x.ndim == 0
            return
        np.testing.assert_array_equal(y, x if idx is None else x[idx])


NUMBER = st.one_of(
    st.integers(-3, 13).map(str),
    st.floats(-3, 13).map(lambda v: f"{v:g}"),
    st.sampled_from(["", "x", "1e1", "nan", "inf"]),
)


@SETTINGS
@given(events=st.lists(st.tuples(NUMBER, NUMBER, st.sampled_from(["One", "Two", "Three?"])), min_size=1, max_size=3))
def test_llp_rows_read_exactly_or_raise(events):
    text = (
        "filename\tonset\toffset\tevent_labels\nclip\t"
        + "\t".join(",".join(e[i] for e in events) for i in range(3))
        + "\n"
    )
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "x.csv"
        path.write_text(text, encoding="utf-8")
        try:
            _, labels = read_llp_csv(path, ["One", "Two"])
        except DataFormatError:
            return
    want = np.zeros((10, 3), dtype=np.float32)
    for on, off, name in events:  # success means: whole seconds, 0 <= on < off <= 10, known class
        a, b = float(on), float(off)
        assert a == int(a) and b == int(b) and 0 <= a < b <= 10 and name in ("One", "Two")
        want[int(a) : int(b), ["One", "Two"].index(name)] = 1
    want[:, 2] = want[:, :2].sum(1) == 0
    np.testing.assert_array_equal(labels[0], want)


BUDGET = st.one_of(
    st.integers(-2, 12), st.floats(-2, 12), st.sampled_from([np.nan, np.inf, 2.5]), st.sampled_from([True, "4", None])
)


@SETTINGS
@given(
    E=hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=8),
        elements=st.floats(-1e3, 1e3) | st.sampled_from([np.nan, np.inf]),
    ),
    cc=BUDGET,
    mx=BUDGET,
    mn=BUDGET,
)
def test_toc_select_returns_a_valid_selection_or_raises_value_error(E, cc, mx, mn):
    try:
        idx = toc_select(E, cc, mx, mn)
    except ValueError:
        return
    assert E.ndim == 2 and E.shape[0] >= 2 and np.isfinite(E).all()
    assert idx.dtype == torch.long and len(idx) == int(cc) <= E.shape[1]
    assert int(idx.min()) >= 0 and int(idx.max()) < E.shape[1]
    q = int(cc) // (int(mx) + int(mn))
    assert q * (int(mx) + int(mn)) == int(cc)


@SETTINGS
@given(
    labels=hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 4), st.just(10), st.integers(1, 4)),
        elements=st.sampled_from([0.0, 1.0, 0.5, 2.0, -1.0, np.nan]),
    ),
    n_classes=st.integers(1, 4),
)
def test_ave_labels_read_exactly_or_raise(labels, n_classes):
    from hdcid.data import read_ave, write_ave

    n = labels.shape[0]
    g = np.random.default_rng(0)
    ok = (
        labels.shape[2] == n_classes + 1
        and np.isfinite(labels).all()
        and ((labels >= 0) & (labels <= 1)).all()
        and (labels.max(axis=2) > 0).all()
    )
    with tempfile.TemporaryDirectory() as d:
        write_ave(
            d,
            g.normal(size=(n, 10, 7, 7, 2)),
            g.normal(size=(n, 10, 3)),
            labels,
            {"train": np.arange(n)},
            classes=[f"c{i}" for i in range(n_classes)],
        )
        try:
            got = read_ave(d, "train")
        except DataFormatError:
            assert not ok
            return
    assert ok  # NaN, out-of-range and all-zero segments never load
    np.testing.assert_array_equal(got.labels, labels.astype(np.float32))
