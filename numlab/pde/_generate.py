"""What every nl.pde generator shares: per-sample seeds, batching, progress, disk cache, Dask.

A generator is described by a :class:`Recipe`: ``draw(generator, i)`` makes the random
input of one sample on the host (NumPy, float64), ``solve(noise, xp, device)`` turns a
batch of those inputs, stacked on the first axis and placed on the target backend, into
the arrays the public function returns (also stacked on the first axis). :func:`generate`
does the rest, identically for Burgers, Darcy and Navier-Stokes:

- sample ``i`` draws from its own generator, ``SeedSequence(entropy, spawn_key=(i,))``,
  so it depends only on the seed and ``i``: ``burgers(1000, rng=0)[k]`` equals
  ``burgers(10, rng=0)[k]`` and the same sample made in any chunk of a Dask run;
- samples are solved in batches (vectorised solvers), with a tqdm progress bar;
- ``cache=`` a directory keeps each result in an ``.npz`` file keyed by the generator,
  every argument, the seed and numlab's version, written to a temporary file and renamed
  (a half-written file is never read back);
- ``chunks=`` returns lazy Dask arrays whose blocks are generated independently on the
  workers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pathlib
from collections.abc import Callable

import numpy as np

from .. import __version__, _backend
from .._progress import check_progress
from .._validation import check_int, check_like, check_rng

__all__ = ["Recipe", "generate", "seed_entropy", "sample_generator"]


@dataclasses.dataclass(frozen=True)
class Recipe:
    """One PDE data generator.

    Attributes
    ----------
    name : str
        The public function's name (cache keys, progress bar).
    params : dict
        Every argument that changes the result (cache key); JSON-serialisable.
    draw : callable
        ``draw(generator) -> numpy.ndarray`` (float64): the random input of one sample.
    solve : callable
        ``solve(noise, xp, device) -> tuple of arrays``: solves a batch; ``noise`` is the
        stack of ``draw`` outputs as an ``xp`` float64 array on ``device``.
    shapes : tuple of tuple of int
        The per-sample shape of each returned array.
    batch_size : int
        Samples per vectorised solve.
    """

    name: str
    params: dict
    draw: Callable
    solve: Callable
    shapes: tuple
    batch_size: int


def seed_entropy(rng) -> int:
    """The root entropy of a run: the seed itself, or 128 bits drawn once from a Generator.

    ``None`` draws fresh entropy from the operating system.
    """
    if rng is None:
        return int(np.random.SeedSequence().entropy)
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        check_rng(rng)  # refuses negative seeds with the usual message
        return int(rng)
    generator = check_rng(rng)
    high, low = generator.integers(0, 2**63, size=2, dtype=np.int64)
    return (int(high) << 64) | int(low)


def sample_generator(entropy: int, i: int) -> np.random.Generator:
    """The generator of sample ``i``: the ``i``-th child of the run's seed sequence."""
    return np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(i,)))


def _check_dtype(dtype, xp):
    if dtype is None:
        return xp.float64
    try:
        name = _backend.numpy_dtype(dtype, xp).name
    except TypeError:
        name = None
    if name not in ("float32", "float64"):
        raise ValueError(f"`dtype` must be float32 or float64; got {dtype!r}")
    return getattr(xp, name)


def _cache_path(cache, recipe: Recipe, entropy: int, n_samples: int, dtype_name: str):
    key = json.dumps(
        {"generator": recipe.name, "params": recipe.params, "seed": str(entropy),
         "n_samples": n_samples, "dtype": dtype_name, "numlab": __version__},
        sort_keys=True,
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    return pathlib.Path(cache) / f"{recipe.name}-{digest}.npz"


def _progress_bar(progress, total, name):
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"nl.pde.{name}", unit="sample")


def _solve_range(recipe: Recipe, entropy, start, stop, xp, device, dtype, progress):
    """Samples ``start .. stop-1`` as host or device arrays of ``dtype``."""
    outputs = None
    bar = _progress_bar(progress, stop - start, recipe.name)
    try:
        for lo in range(start, stop, recipe.batch_size):
            hi = min(lo + recipe.batch_size, stop)
            noise = np.stack([recipe.draw(sample_generator(entropy, i)) for i in range(lo, hi)])
            noise = _backend.asarray(noise, xp=xp, device=device, dtype=xp.float64)
            parts = recipe.solve(noise, xp, device)
            if outputs is None:
                outputs = [
                    xp.empty((stop - start, *shape), dtype=dtype, device=device)
                    for shape in recipe.shapes
                ]
            for out, part in zip(outputs, parts, strict=True):
                out[lo - start:hi - start, ...] = xp.astype(part, dtype)
            if bar is not None:
                bar.update(hi - lo)
    finally:
        if bar is not None:
            bar.close()
    return tuple(outputs)


def _lazy(recipe: Recipe, entropy, n_samples, chunks, dtype_name):
    import dask
    import dask.array as da

    def block(start, stop):
        xp = _backend.namespace(np.empty(0))
        return _solve_range(recipe, entropy, start, stop, xp, None, getattr(np, dtype_name), False)

    results = []
    for start in range(0, n_samples, chunks):
        stop = min(start + chunks, n_samples)
        blocks = dask.delayed(block, pure=True, nout=len(recipe.shapes))(start, stop)
        results.append([
            da.from_delayed(blocks[j], shape=(stop - start, *shape), dtype=dtype_name)
            for j, shape in enumerate(recipe.shapes)
        ])
    return tuple(
        da.concatenate([r[j] for r in results], axis=0) for j in range(len(recipe.shapes))
    )


def generate(recipe: Recipe, n_samples, *, rng=None, like=None, dtype=None, chunks=None,
             cache=None, progress=False):
    """Run ``recipe`` for ``n_samples`` samples; see the module docstring for the options.

    Returns
    -------
    tuple of arrays
        One array per entry of ``recipe.shapes``, samples first, of ``dtype``, on the
        library and device of ``like`` (NumPy by default), or lazy Dask arrays when
        ``chunks`` is given.
    """
    n_samples = check_int(n_samples, "n_samples", low=1)
    check_like(like)
    progress = check_progress(progress)
    xp = _backend.namespace(like)
    device = None if like is None else _backend.device(like)
    dtype = _check_dtype(dtype, xp)
    dtype_name = _backend.numpy_dtype(dtype, xp).name
    entropy = seed_entropy(rng)

    if chunks is not None:
        chunks = check_int(chunks, "chunks", low=1)
        if like is not None and not _backend.is_dask(xp):
            raise ValueError(
                "`chunks` makes lazy Dask arrays generated on the workers; it cannot be "
                f"combined with `like` (a {type(like).__module__.split('.')[0]} array)"
            )
        return _lazy(recipe, entropy, n_samples, chunks, dtype_name)
    if _backend.is_dask(xp):
        chunks = recipe.batch_size
        return _lazy(recipe, entropy, n_samples, chunks, dtype_name)

    path = None
    if cache is not None:
        if not isinstance(cache, (str, os.PathLike)):
            raise TypeError(f"`cache` must be None or a directory path; got {type(cache).__name__}")
        path = _cache_path(cache, recipe, entropy, n_samples, dtype_name)
        if path.exists():
            with np.load(path) as data:
                return tuple(
                    _backend.asarray(data[f"arr_{j}"], xp=xp, device=device, dtype=dtype)
                    for j in range(len(recipe.shapes))
                )

    outputs = _solve_range(recipe, entropy, 0, n_samples, xp, device, dtype, progress)

    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with tmp.open("wb") as f:
            np.savez(f, *(_backend.to_numpy(o) for o in outputs))
        os.replace(tmp, path)
    return outputs
