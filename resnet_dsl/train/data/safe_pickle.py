"""A restricted unpickler for CIFAR's python-format files, which are pickles.

A pickle is a program: unpickling an untrusted one can call any function (`os.system`).
CIFAR's files hold one dict of bytes keys, a bytes batch label, lists of ints and bytes,
and one numpy uint8 array; written by Python 2 they name exactly three globals
(`numpy.core.multiarray._reconstruct`, `numpy.ndarray`, `numpy.dtype`), and a file
re-pickled by Python 3 adds `_codecs.encode` for its bytes. `find_class` admits those
and nothing else, each behind a wrapper that checks its arguments: `_reconstruct` only
builds plain ndarrays, `dtype` only fixed-size numbers (never `object`, whose arrays
could hold arbitrary objects), `encode` only latin-1. Everything else is refused with
E803 before any of it runs.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np

from resnet_dsl.errors import error

try:  # numpy >= 2 moved the module; its pickles name the new path, old ones the old
    from numpy._core.multiarray import _reconstruct as _np_reconstruct
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core.multiarray import _reconstruct as _np_reconstruct

# Fixed-size numeric dtypes a data file may use; object, void and string dtypes are out.
_ALLOWED_DTYPES = frozenset("u1 i1 u2 i2 u4 i4 u8 i8 f4 f8".split())


def _reconstruct(cls, shape, typecode):
    if cls is not np.ndarray:
        raise pickle.UnpicklingError("numpy _reconstruct of a class other than ndarray")
    return _np_reconstruct(cls, shape, typecode)


def _dtype(name, align=False, copy=True):
    if not isinstance(name, (str, bytes)):
        raise pickle.UnpicklingError(f"dtype {name!r}")
    key = name.decode("latin-1") if isinstance(name, bytes) else name
    if key not in _ALLOWED_DTYPES:
        raise pickle.UnpicklingError(f"arrays of dtype {key!r}")
    return np.dtype(key, align, copy)


def _encode(text, encoding="utf-8"):
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"_codecs.encode({encoding!r})")
    return text.encode("latin-1")


_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _dtype,
    ("_codecs", "encode"): _encode,
}


class _Refused(pickle.UnpicklingError):
    def __init__(self, what: str):
        super().__init__(what)
        self.what = what


class _CifarUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        found = _GLOBALS.get((module, name))
        if found is None:
            raise _Refused(f"{module}.{name}")
        return found

    def persistent_load(self, pid):
        raise _Refused("a persistent id")


def load_plain_pickle(path: Path):
    """Unpickle a data file that may only hold plain arrays, lists, dicts and bytes.

    Raises `RnetError` E803 for anything else and E802 for a damaged file; nothing the
    file names is called unless it is on the short list above.

    >>> import tempfile, os
    >>> p = Path(tempfile.mkdtemp()) / "batch"
    >>> _ = p.write_bytes(pickle.dumps({b"labels": [1, 2]}, protocol=2))
    >>> load_plain_pickle(p)
    {b'labels': [1, 2]}
    """
    data = path.read_bytes()
    try:
        # encoding="bytes": Python 2 `str` objects (CIFAR's keys and pixels) stay bytes.
        return _CifarUnpickler(io.BytesIO(data), encoding="bytes").load()
    except _Refused as exc:
        raise error(
            "E803", f"{path}: refused to unpickle: the file asks for {exc.what}, which a CIFAR "
                    "data file never holds",
            help="only plain arrays, lists, dicts and bytes are admitted; use the official files "
                 "(or the binary version of the dataset)") from None
    except EOFError:
        raise _damaged(path, f"the pickle is truncated ({len(data):,} bytes)") from None
    except pickle.UnpicklingError as exc:
        if "truncated" in str(exc):
            raise _damaged(path, f"the pickle is truncated ({len(data):,} bytes)") from None
        raise error("E803", f"{path}: refused to unpickle: {exc}",
                    help="use the official files (or the binary version of the dataset)") from None
    except (ValueError, TypeError, KeyError, IndexError, AttributeError,
            OverflowError, MemoryError, UnicodeDecodeError) as exc:
        raise _damaged(path, f"not a readable pickle ({type(exc).__name__}: {exc})") from None


def _damaged(path: Path, why: str):
    return error("E802", f"{path}: {why}",
                 help="re-extract the dataset from its archive")
