"""Gaussian random fields on the periodic unit grid: the initial data of Burgers and Navier-Stokes.

A field ``g ~ N(0, sigma^2 (-Delta + tau^2 I)^(-alpha))`` on the torus ``[0, 1)^d`` is a
Fourier series ``g(x) = sum_k c_k exp(2 pi i k.x)`` with independent (Hermitian-paired)
coefficients of variance ``E|c_k|^2 = sigma^2 (4 pi^2 |k|^2 + tau^2)^(-alpha)`` and
``c_0 = 0`` (zero mean), truncated at the grid: the wavenumbers ``|k_i| <= s/2`` of an
``s``-point grid per axis.

The work is split for :func:`numlab.pde._generate.generate`: :func:`draw` makes the
standard normal noise of one sample on the host from that sample's generator, and
:func:`synthesize` turns a stacked batch of noise, on any array-API backend, into fields.
"""

from __future__ import annotations

import math

import numpy as np

from .. import _backend
from .._validation import check_int, check_scalar
from ._generate import Recipe, generate
from ._spectral import wavenumbers

__all__ = ["gaussian_random_field"]


def noise_shape(resolution: int, ndim: int) -> tuple:
    """Shape of one sample's noise: real and imaginary parts of the half spectrum."""
    return (2,) + (resolution,) * (ndim - 1) + (resolution // 2 + 1,)


def draw(generator: np.random.Generator, resolution: int, ndim: int) -> np.ndarray:
    """Standard normal noise (float64) of one sample, shape :func:`noise_shape`."""
    return generator.standard_normal(noise_shape(resolution, ndim))


def _reflect(plane, ndim: int, xp):
    """``plane[-k]`` for the wavenumbers of the full (non-last) axes of a half spectrum.

    ``plane`` is ``(batch, s, ..., s)`` with ``ndim - 1`` full axes; index ``i`` holds
    wavenumber ``i`` (mod s), so ``-k`` is at ``(s - i) mod s``: flip, then roll by one.
    """
    for axis in range(1, ndim):
        plane = xp.roll(xp.flip(plane, axis=axis), 1, axis=axis)
    return plane


def synthesize(noise, resolution: int, ndim: int, *, alpha: float, tau: float, sigma: float, xp):
    """Fields from a batch of :func:`draw` noise.

    Parameters
    ----------
    noise : array of shape (batch, 2, *half_spectrum), float64
        Stacked :func:`draw` outputs on the target backend.
    resolution, ndim : int
        Grid points per axis and number of axes.
    alpha, tau, sigma : float
        The covariance ``sigma^2 (-Delta + tau^2 I)^(-alpha)``.
    xp : namespace

    Returns
    -------
    array of shape (batch,) + (resolution,) * ndim, float64
    """
    s = resolution
    ks = wavenumbers(s, ndim, xp, device=_backend.device(noise))
    k2 = sum(xp.astype(k, xp.float64) ** 2 for k in ks)
    amplitude = sigma * (4 * math.pi**2 * k2 + tau**2) ** (-alpha / 2)
    # Zero mean: the k = 0 coefficient is dropped.
    amplitude = xp.where(k2 == 0, xp.zeros_like(amplitude), amplitude)

    # Complex normal coefficients, E|c|^2 = amplitude^2 (real and imaginary parts each half).
    c = (noise[:, 0, ...] + 1j * noise[:, 1, ...]) * (amplitude / math.sqrt(2))
    # The last-axis planes k_d = 0 and (even s) k_d = s/2 hold both k and -k: make them
    # Hermitian, c[-k] = conj(c[k]), keeping the variance (an irfftn would otherwise drop
    # half of it by taking the Hermitian part). Self-conjugate modes become real.
    planes = [0] + ([s // 2] if s % 2 == 0 else [])
    for j in planes:
        p = c[..., j]
        c[..., j] = (p + xp.conj(_reflect(p, ndim, xp))) / math.sqrt(2)
    axes = tuple(range(-ndim, 0))
    # irfftn divides by the number of grid points; the series has no such factor.
    return _backend.fft_namespace(xp).irfftn(c, s=(s,) * ndim, axes=axes) * float(s**ndim)


def gaussian_random_field(n_samples, resolution, *, ndim=1, alpha=2.0, tau=5.0, sigma=25.0,
                          rng=None, like=None, dtype=None, chunks=None, cache=None,
                          progress=False, batch_size=256):
    """Draw a periodic Gaussian random field ``N(0, sigma^2 (-Delta + tau^2 I)^(-alpha))``.

    The field lives on the unit torus ``[0, 1)^ndim``, sampled at the grid points
    ``x = j / resolution``; its Fourier series is truncated at the grid (every wavenumber
    ``|k_i| <= resolution / 2``) and has zero mean. The defaults are the initial data of
    the Burgers benchmark of Li et al. (2021): ``625 (-Delta + 25 I)^(-2)``, i.e.
    ``u0(x) = sum_{k>=1} sqrt(2) sigma ((2 pi k)^2 + tau^2)^(-alpha/2)
    (xi_k cos 2 pi k x + eta_k sin 2 pi k x)`` with standard normal ``xi_k, eta_k``.
    The Navier-Stokes initial vorticity is ``ndim=2, alpha=2.5, tau=7,
    sigma=sqrt(2) * 7**1.5`` (see :func:`numlab.pde.navier_stokes`).

    Parameters
    ----------
    n_samples : int
        Number of fields, >= 1.
    resolution : int
        Grid points per axis, >= 2.
    ndim : {1, 2}
        Number of space dimensions.
    alpha, tau, sigma : float
        Smoothness exponent (> ndim / 2 for a field with finite variance), inverse
        length scale and amplitude, all > 0.
    rng : None, int or numpy.random.Generator
        Sample ``i`` depends only on the seed and ``i`` (see :mod:`numlab.pde`).
    like : array, optional
        The result takes this array's library and device (NumPy by default).
    dtype : {None, float32, float64}
        Output dtype (float64 by default; computed in float64 either way).
    chunks : int, optional
        Return a lazy Dask array of blocks of ``chunks`` samples, made on the workers.
    cache : str or path-like, optional
        A directory keeping results on disk, keyed by every argument and numlab's version.
    progress : bool, default False
        Show a progress bar.
    batch_size : int, default 256
        Samples per vectorised synthesis.

    Returns
    -------
    array of shape (n_samples,) + (resolution,) * ndim
        The fields at the grid points, samples first.

    References
    ----------
    Z. Li et al., "Fourier Neural Operator for Parametric Partial Differential
    Equations", ICLR 2021 (Burgers and Navier-Stokes initial data).

    Examples
    --------
    >>> import numlab as nl
    >>> u0 = nl.pde.gaussian_random_field(4, 256, rng=0)
    >>> u0.shape
    (4, 256)
    """
    ndim = check_int(ndim, "ndim", low=1, high=2)
    resolution = check_int(resolution, "resolution", low=2)
    alpha = check_scalar(alpha, "alpha", low=0)
    tau = check_scalar(tau, "tau", low=0)
    sigma = check_scalar(sigma, "sigma", low=0)
    check_spectrum(resolution, ndim, alpha, tau, sigma)
    batch_size = check_int(batch_size, "batch_size", low=1)
    recipe = field_recipe("gaussian_random_field", resolution, ndim, alpha, tau, sigma,
                          batch_size)
    (field,) = generate(recipe, n_samples, rng=rng, like=like, dtype=dtype, chunks=chunks,
                        cache=cache, progress=progress)
    return field


def check_spectrum(resolution, ndim, alpha, tau, sigma):
    """Refuse covariance parameters whose spectrum amplitudes
    ``sigma (4 pi^2 |k|^2 + tau^2)^(-alpha / 2)`` overflow or underflow float64 (the field
    would be inf or silently zero)."""
    if sigma == 0:
        return
    for k in (1.0, math.sqrt(ndim) * (resolution // 2)):
        # log of the amplitude, without forming tau^2 (which overflows first)
        log_amplitude = math.log(sigma) - alpha * math.log(math.hypot(2 * math.pi * k, tau))
        if not -700 < log_amplitude < 700:
            raise ValueError(
                f"`alpha`={alpha!r}, `tau`={tau!r} and `sigma`={sigma!r} give a spectrum "
                f"amplitude of 1e{log_amplitude / math.log(10):.0f} at |k| = {k:g}, outside "
                f"float64's range (the field would be inf or zero)")


def field_recipe(name, resolution, ndim, alpha, tau, sigma, batch_size) -> Recipe:
    def draw_one(generator):
        return draw(generator, resolution, ndim)

    def solve(noise, xp, device):
        return (synthesize(noise, resolution, ndim, alpha=alpha, tau=tau, sigma=sigma, xp=xp),)

    return Recipe(
        name=name,
        params={"resolution": resolution, "ndim": ndim, "alpha": alpha, "tau": tau,
                "sigma": sigma},
        draw=draw_one,
        solve=solve,
        shapes=((resolution,) * ndim,),
        batch_size=batch_size,
    )
