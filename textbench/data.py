"""The data directory: where the benchmark files live, their SHA-256 checksums, and ``data fetch``.

Lookup order: ``--data DIR`` (sets ``TEXTBENCH_DATA``), ``$TEXTBENCH_DATA``, then the user data dir
(``platformdirs.user_data_dir("textbench")``). Every file is verified against the checksum below before
it is used. ``fetch`` downloads the upstream files at pinned commits, checks their SHA-256, and
converts the SeqGAN oracle pickle to npz with a restricted unpickler (numpy arrays only).
"""

from __future__ import annotations

import io
import os
import pickle
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import TextbenchError
from .io import atomic_write_bytes, sha256_file


class CorruptDataFile(TextbenchError):
    """A data file is there but its SHA-256 is not the benchmark file's."""


@dataclass(frozen=True)
class DataFile:
    relpath: str
    sha256: str
    description: str
    upstream_url: str | None
    upstream_sha256: str | None


_SEQGAN = "https://raw.githubusercontent.com/LantaoYu/SeqGAN/e2b52fb6309851b14765290e8a972ccac09f1bec"
_TEXYGEN = "https://raw.githubusercontent.com/geek-ai/Texygen/3104e22ac75f3cc2070da2bf5e2da6d2bef149ad"

FILES: dict[str, DataFile] = {
    f.relpath: f
    for f in [
        DataFile(
            "synthetic/seqgan_oracle.npz",
            "45e58e243f4644198f0354d01798d35828efe6cf17603940db694b2096c36775",
            "SeqGAN oracle LSTM parameters (vocab 5000, emb/hidden 32)",
            f"{_SEQGAN}/save/target_params_py3.pkl",
            "5ac794a695dd6e0eb2bb689f3dfda55e4e0053e8c0399e6242630a95f1e60e8a",
        ),
        DataFile(
            "coco/train.txt",
            "2c0fd1f0f43aac6a9dc3926a535516ccf395de535e15ac1fd17cd569420736f5",
            "Image COCO captions, training split (10,000 lines)",
            f"{_TEXYGEN}/data/image_coco.txt",
            "2c0fd1f0f43aac6a9dc3926a535516ccf395de535e15ac1fd17cd569420736f5",
        ),
        DataFile(
            "coco/test.txt",
            "72e25c9fb4d2cd43182ac602c92f6ffc377762147f9709572943b0b09174bcae",
            "Image COCO captions, test split (BLEU references)",
            f"{_TEXYGEN}/data/testdata/test_coco.txt",
            "72e25c9fb4d2cd43182ac602c92f6ffc377762147f9709572943b0b09174bcae",
        ),
        DataFile(
            "emnlp/test.txt",
            "03c646d08f766f4140443db4419b1f0ee292bc0db514208873e9f2e166b95bd2",
            "EMNLP2017 WMT News, test split (10,000 lines)",
            f"{_TEXYGEN}/data/testdata/test_emnlp.txt",
            "03c646d08f766f4140443db4419b1f0ee292bc0db514208873e9f2e166b95bd2",
        ),
    ]
}

# The npz written by ``fetch`` differs byte-wise from the shared one (zip timestamps), so the oracle is
# also accepted when the SHA-256 of its arrays (``oracle_content_sha256``) matches.
ORACLE_CONTENT_SHA256 = "3454ac7657a2e211bd444ce77c6a9fddcf1eb403130a21dca12ef290b13a3a59"

ORACLE_ARRAY_ORDER = ("embedding", "Wi", "Ui", "bi", "Wf", "Uf", "bf", "Wog", "Uog", "bog", "Wc", "Uc", "bc", "Wo", "bo")


def user_data_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("textbench"))


def cache_dir() -> Path:
    """Where derived, re-creatable files go (e.g. the oracle's cached train/test samples)."""
    env = os.environ.get("TEXTBENCH_CACHE")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("textbench"))


def data_dirs() -> list[Path]:
    dirs = []
    env = os.environ.get("TEXTBENCH_DATA")
    if env:
        dirs.append(Path(env))
    dirs.append(user_data_dir())
    return dirs


_verified: dict[tuple[str, float], str] = {}


def locate(relpath: str) -> Path:
    """The verified path of a data file, or one clear error saying what to put where."""
    spec = FILES[relpath]
    for d in data_dirs():
        path = d / relpath
        if path.is_file():
            verify(path, spec.sha256)
            return path
    where = " or ".join(str(d / relpath) for d in data_dirs())
    raise TextbenchError(
        f"data file {relpath} ({spec.description}) not found; put it at {where} "
        f"(set TEXTBENCH_DATA=/path/to/data, e.g. the shared data folder), or run `textbench data fetch`"
    )


def verify(path: Path, expected: str) -> None:
    try:
        key = (str(path), path.stat().st_mtime)
        digest = _verified.get(key) or sha256_file(path)
    except OSError as e:
        raise TextbenchError(f"{path}: cannot read ({e.strerror or e})") from None
    if digest != expected and path.suffix == ".npz" and oracle_content_sha256(path) == ORACLE_CONTENT_SHA256:
        digest = expected
    if digest != expected:
        raise CorruptDataFile(
            f"{path}: corrupt (SHA-256 mismatch: got {digest[:16]}…, expected {expected[:16]}…); "
            "not the benchmark file: delete it and run `textbench data fetch`"
        )
    _verified[key] = digest


def oracle_content_sha256(path: Path) -> str | None:
    """SHA-256 over (name, shape, little-endian float32 bytes) of the 15 oracle arrays, in order."""
    import hashlib

    try:
        arrays = load_oracle_arrays(path)
    except TextbenchError:
        return None
    h = hashlib.sha256()
    for k in ORACLE_ARRAY_ORDER:
        a = np.ascontiguousarray(arrays[k])
        h.update(k.encode())
        h.update(str(a.shape).encode())
        h.update(a.astype("<f4").tobytes())
    return h.hexdigest()


def load_oracle_arrays(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as e:
        raise TextbenchError(f"{path}: cannot read oracle npz ({e})") from None
    missing = [k for k in ORACLE_ARRAY_ORDER if k not in arrays]
    if missing:
        raise TextbenchError(f"{path}: oracle npz lacks arrays {missing}")
    return arrays


# -- fetch ------------------------------------------------------------------------------------------
class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Admits numpy's array reconstruction and nothing else (no os.system, no arbitrary callables)."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("_codecs", "encode"),  # pickle protocol 2 stores array bytes through it; it only encodes text
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self._ALLOWED:
            if module.startswith("numpy.core"):
                module = module.replace("numpy.core", "numpy._core", 1) if hasattr(np, "_core") else module
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")


def restricted_unpickle(data: bytes):
    return _NumpyOnlyUnpickler(io.BytesIO(data), encoding="latin1").load()


def oracle_pickle_to_npz(data: bytes) -> bytes:
    """Convert SeqGAN's ``target_params_py3.pkl`` (a list of 15 float32 arrays) to npz bytes."""
    try:
        params = restricted_unpickle(data)
    except Exception as e:
        raise TextbenchError(f"oracle pickle rejected: {e}") from None
    if not isinstance(params, list) or len(params) != len(ORACLE_ARRAY_ORDER):
        raise TextbenchError("oracle pickle is not a list of 15 arrays")
    buf = io.BytesIO()
    np.savez(buf, **{name: np.asarray(a, dtype=np.float32) for name, a in zip(ORACLE_ARRAY_ORDER, params)})
    return buf.getvalue()


def fetch(dest: Path | None = None, timeout: float = 60.0, log=print) -> list[Path]:
    """Download every upstream file, verify its SHA-256, convert, verify the result, write atomically."""
    import hashlib

    dest = Path(dest) if dest else (data_dirs()[0])
    written = []
    for spec in FILES.values():
        target = dest / spec.relpath
        if target.is_file():
            verify(target, spec.sha256)
            log(f"ok       {target}")
            continue
        log(f"download {spec.upstream_url}")
        try:
            with urllib.request.urlopen(spec.upstream_url, timeout=timeout) as r:
                raw = r.read()
        except Exception as e:
            raise TextbenchError(f"cannot download {spec.upstream_url}: {e}") from None
        digest = hashlib.sha256(raw).hexdigest()
        if digest != spec.upstream_sha256:
            raise TextbenchError(f"{spec.upstream_url}: SHA-256 mismatch ({digest}); refusing to use it")
        data = oracle_pickle_to_npz(raw) if spec.relpath.endswith(".npz") else raw
        if spec.relpath.endswith(".npz"):
            # npz bytes differ with zip timestamps; check the arrays, then accept the file we wrote.
            atomic_write_bytes(target, data)
            if oracle_content_sha256(target) != ORACLE_CONTENT_SHA256:
                target.unlink()
                raise TextbenchError(f"{spec.relpath}: converted oracle has the wrong arrays")
        else:
            if hashlib.sha256(data).hexdigest() != spec.sha256:
                raise TextbenchError(f"{spec.relpath}: converted file has the wrong SHA-256")
            atomic_write_bytes(target, data)
        written.append(target)
        log(f"wrote    {target}")
    return written
