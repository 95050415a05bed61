"""Low-level readers/writers of the original release formats (docs/method.md §1.3).

Per-clip zip-of-pickle features, HDF5 arrays, tab/comma CSVs and one-name-per-line class lists.
Every failure raises `DataFormatError` naming the file, what was expected and what was found.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from hdcid.utils import atomic_path


class DataFormatError(ValueError):
    """Bad input file: the message names the file, what was expected and what was found."""


def _require_file(path: str | Path, what: str = "file") -> Path:
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"{what} not found: {path} (expected an existing file)")
    return path


def fmt_shape(shape: Sequence[int | None]) -> str:
    """(None, 10, 29) -> '(*, 10, 29)'."""
    parts = ["*" if s is None else str(s) for s in shape]
    return f"({parts[0]},)" if len(parts) == 1 else f"({', '.join(parts)})"


# ----------------------------------------------------------------------------- zip of pickle
# The only globals a feature pickle may name: what numpy needs to rebuild an ndarray (numpy 1 and 2
# module spellings), and the builtin containers. Anything else (os.system, eval, a class of some
# package ...) is refused BEFORE it is called, so a hostile .pkl cannot run code on load.
_NUMPY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}
_NUMPY2 = int(np.__version__.split(".")[0]) >= 2
_PLAIN_GLOBALS = {
    (m, n)
    for m in ("builtins", "__builtin__")  # protocol <= 2 spells it __builtin__
    for n in ("list", "dict", "tuple", "set", "frozenset", "bytes", "bytearray")
}
_PLAIN_GLOBALS.add(("_codecs", "encode"))  # protocol 2 spells bytes as _codecs.encode(str, 'latin1')


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that admits only numpy arrays / dtypes / scalars and plain containers.

    Any other global (a function or class) raises `DataFormatError` naming it; `where` names the
    file in the message. Used for every feature pickle (`read_zip_pickle`)."""

    def __init__(self, file, where: str):
        super().__init__(file)
        self.where = where

    def find_class(self, module: str, name: str):
        if (module, name) in _NUMPY_GLOBALS:
            if _NUMPY2:  # numpy 1 pickles say numpy.core, numpy 2 pickles numpy._core
                module = module.replace("numpy.core.", "numpy._core.")
            else:
                module = module.replace("numpy._core.", "numpy.core.")
            return super().find_class(module, name)
        if (module, name) in _PLAIN_GLOBALS:
            return super().find_class(module, name)
        raise DataFormatError(
            f"{self.where}: refusing to unpickle {module}.{name}; a feature pickle may hold only "
            "numpy arrays and plain containers (list, dict, tuple) - the file is not a feature file "
            "or was tampered with"
        )


def restricted_loads(raw: bytes, where: str):
    """`pickle.loads` through `RestrictedUnpickler` (numpy arrays and plain containers only)."""
    return RestrictedUnpickler(io.BytesIO(raw), where).load()


def read_zip_pickle(path: str | Path) -> np.ndarray:
    """The numpy array pickled in `path` (a .zip); the LAST member whose name contains `.pkl` wins.

    The pickle is read with `RestrictedUnpickler`: only numpy arrays and plain containers, never
    code (a pickle naming any other global raises `DataFormatError` before anything runs)."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            members = [n for n in zf.namelist() if ".pkl" in n]
            if not members:
                raise DataFormatError(
                    f"{path}: expected a member whose name contains '.pkl', found members {zf.namelist()}"
                )
            raw = zf.read(members[-1])
    except (FileNotFoundError, IsADirectoryError) as e:  # one open instead of a stat and an open
        raise DataFormatError(f"feature zip not found: {path} (expected an existing file)") from e
    except zipfile.BadZipFile as e:
        raise DataFormatError(f"{path}: not a valid zip file ({e})") from e
    try:
        arr = restricted_loads(raw, f"{path} member {members[-1]!r}")
    except DataFormatError:
        raise
    except Exception as e:  # noqa: BLE001 - any unpickling failure is a format error
        raise DataFormatError(f"{path}: member {members[-1]!r} is not a pickled array ({e})") from e
    if not isinstance(arr, np.ndarray):
        raise DataFormatError(f"{path}: expected a pickled numpy ndarray, found {type(arr).__name__}")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise DataFormatError(f"{path}: expected a numeric array, found dtype {arr.dtype}")
    return arr


def write_zip_pickle(path: str | Path, array: np.ndarray, member: str | None = None) -> Path:
    """Write `array` pickled (protocol 4) as the single member `<stem>.pkl` of the zip `path`."""
    path = Path(path)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        info = zipfile.ZipInfo(member or f"{path.stem}.pkl", date_time=(1980, 1, 1, 0, 0, 0))
        zf.writestr(info, pickle.dumps(np.asarray(array), protocol=4))  # fixed time: same bytes
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue())
    return path


# ----------------------------------------------------------------------------- HDF5
def _check_array(arr: np.ndarray, path: Path, key: str, shape, dtype) -> None:
    if shape is not None:
        if len(shape) != arr.ndim or any(s is not None and s != a for s, a in zip(shape, arr.shape)):
            raise DataFormatError(f"{path}: key {key!r} expected shape {fmt_shape(shape)}, found {arr.shape}")
    if dtype is not None:
        allowed = [np.dtype(d) for d in (dtype if isinstance(dtype, (list, tuple)) else [dtype])]
        if arr.dtype not in allowed:
            raise DataFormatError(
                f"{path}: key {key!r} expected dtype {' or '.join(map(str, allowed))}, found {arr.dtype}"
            )


def read_h5(
    path: str | Path,
    key: str,
    shape: Sequence[int | None] | None = None,
    dtype=None,
    index: np.ndarray | None = None,
    out_dtype=None,
    chunk_rows: int = 256,
) -> np.ndarray:
    """Dataset `key` of the HDF5 file `path`, optionally only the rows `index` (any order).

    `shape` may contain None for free axes (checked on the full dataset, before indexing);
    `dtype` one dtype or a list of allowed dtypes. Rows are read with h5py fancy indexing on the
    sorted unique indices, `chunk_rows` at a time, cast to `out_dtype` (default: stored dtype),
    so only the needed rows are loaded and peak memory is the output plus one chunk (the AVE
    video file is ~8 GB float64).
    """
    import h5py

    path = _require_file(path, "HDF5 file")
    with h5py.File(path, "r") as f:
        if key not in f:
            raise DataFormatError(f"{path}: expected HDF5 key {key!r}, found keys {sorted(f.keys())}")
        ds = f[key]
        if not isinstance(ds, h5py.Dataset) or ds.ndim == 0:
            raise DataFormatError(
                f"{path}: key {key!r} expected an array with rows, found "
                f"{'a scalar' if isinstance(ds, h5py.Dataset) else 'a group'}"
            )
        _check_array(_Shape(ds.shape, ds.dtype), path, key, shape, dtype)
        out_dtype = np.dtype(out_dtype or ds.dtype)
        if index is None:
            index = np.arange(ds.shape[0])
        index = np.asarray(index, dtype=np.int64)
        if index.size and (index.min() < 0 or index.max() >= ds.shape[0]):
            raise DataFormatError(
                f"{path}: key {key!r} has {ds.shape[0]} rows, asked for index range [{index.min()}, {index.max()}]"
            )
        uniq, inverse = np.unique(index, return_inverse=True)
        rows = np.empty((uniq.size,) + ds.shape[1:], dtype=out_dtype)
        for a in range(0, uniq.size, chunk_rows):
            rows[a : a + chunk_rows] = ds[uniq[a : a + chunk_rows]]
        return rows if np.array_equal(uniq, index) else rows[inverse]


class _Shape:
    """Shape/dtype holder so `_check_array` can check an h5 dataset without reading it."""

    def __init__(self, shape, dtype):
        self.shape, self.dtype, self.ndim = tuple(shape), np.dtype(dtype), len(shape)


def write_h5(path: str | Path, key: str, array: np.ndarray) -> Path:
    """Write `array` as dataset `key` of a new HDF5 file `path` (atomic)."""
    import h5py

    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.create_dataset(key, data=np.asarray(array))
    return Path(path)


# ----------------------------------------------------------------------------- arrays
def pad_or_truncate(x: np.ndarray, T: int = 10) -> np.ndarray:
    """(T', ...) -> (T, ...): truncate, or pad by repeating the last row (original convention)."""
    if x.shape[0] == 0:
        raise DataFormatError(f"cannot pad an array with 0 rows to {T} rows (shape {x.shape})")
    if x.shape[0] >= T:
        return x[:T]
    reps = np.repeat(x[-1:], T - x.shape[0], axis=0)
    return np.concatenate([x, reps], axis=0)


def check_finite(arr: np.ndarray, where: str) -> np.ndarray:
    """Raise if `arr` holds NaN or inf; `where` names the file/key for the message."""
    bad = ~np.isfinite(arr)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise DataFormatError(
            f"{where}: expected finite features, found {int(bad.sum())} NaN/inf values (first at index {first})"
        )
    return arr


def check_labels(labels: np.ndarray, where: str) -> np.ndarray:
    """Raise unless `labels` (N, T, K+1) are finite, within [0, 1], and every (clip, segment) row
    has a positive entry (a class or the background column K); an all-zero row would be read as
    class 0 by argmax. The message names the first bad clip row and segment."""
    if labels.size == 0:
        return labels
    finite = np.isfinite(labels)
    if not finite.all():
        n, t, c = (int(i) for i in np.argwhere(~finite)[0])
        raise DataFormatError(
            f"{where}: expected finite 0/1 labels, found {int((~finite).sum())} NaN/inf "
            f"values (first at row {n}, segment {t}, column {c})"
        )
    out = (labels < 0) | (labels > 1)
    if out.any():
        n, t, c = (int(i) for i in np.argwhere(out)[0])
        raise DataFormatError(
            f"{where}: expected labels in [0, 1], found {int(out.sum())} values outside "
            f"(first {float(labels[n, t, c])} at row {n}, segment {t}, column {c})"
        )
    empty = labels.max(axis=2) <= 0  # (N, T)
    if empty.any():
        n, t = (int(i) for i in np.argwhere(empty)[0])
        raise DataFormatError(
            f"{where}: every segment needs a class or the background column "
            f"(last) set, found {int(empty.sum())} all-zero segments (first at row {n}, "
            f"segment {t})"
        )
    return labels


def check_shape(arr: np.ndarray, shape: Sequence[int | None], where: str) -> np.ndarray:
    """Raise unless `arr.shape` matches `shape` (None = any size on that axis)."""
    if len(shape) != arr.ndim or any(s is not None and s != a for s, a in zip(shape, arr.shape)):
        raise DataFormatError(f"{where}: expected shape {fmt_shape(shape)}, found {arr.shape}")
    return arr


# ----------------------------------------------------------------------------- text files
def read_lines(path: str | Path) -> list[str]:
    """Non-empty stripped lines of a class-list file (line index = label column)."""
    path = _require_file(path, "class list")
    lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
    lines = [ln for ln in lines if ln]
    if not lines:
        raise DataFormatError(f"{path}: expected one class name per line, found an empty file")
    return lines


def write_lines(path: str | Path, lines: Iterable[str]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{ln}\n" for ln in lines), encoding="utf-8")
    return path


def read_csv(path: str | Path, columns: Sequence[str], sep: str = ",", allow_empty: bool = False) -> pd.DataFrame:
    """A CSV read with dtype=str; raises if any of `columns` is missing, or (unless `allow_empty`)
    if it has no data rows."""
    path = _require_file(path, "CSV")
    try:
        df = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError as e:
        raise DataFormatError(f"{path}: expected a header with columns {list(columns)}, found an empty file") from e
    except pd.errors.ParserError as e:
        raise DataFormatError(f"{path}: not a {'tab' if sep == chr(9) else repr(sep)}-separated CSV ({e})") from e
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataFormatError(f"{path}: expected columns {list(columns)}, missing {missing}; found {list(df.columns)}")
    if not allow_empty and len(df) == 0:
        raise DataFormatError(
            f"{path}: expected at least one data row under the header {list(df.columns)}, "
            "found none (the file holds only a header)"
        )
    return df


def write_csv(path: str | Path, df: pd.DataFrame, sep: str = ",") -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, sep=sep, index=False)
    return path


def class_index(names: Sequence[str], classes: Sequence[str], where: str) -> np.ndarray:
    """Indices of `names` in `classes`; raises naming the first unknown class."""
    lookup = {c: i for i, c in enumerate(classes)}
    out = np.empty(len(names), dtype=np.int64)
    for j, n in enumerate(names):
        if n not in lookup:
            raise DataFormatError(f"{where}: unknown class name {n!r} (row {j}); expected one of {list(classes)}")
        out[j] = lookup[n]
    return out
