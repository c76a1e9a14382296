"""The Eckhart-Young (EY) loss of Chapman, Aguila & Wells (2024) and its gradient.

For the GEP ``A u = lambda B u`` of linear CCA (``A`` the between-view covariance
blocks, ``B`` the shrunk within-view covariances) the top-k subspace minimises

    L(U) = tr(-2 U^T A U + (U^T B U)^2),

with minimum ``-sum_k lambda_k^2``, and no spurious local minima. With projections
``Z_i = X_i W_i`` of a mini-batch, ``U^T A U`` is estimated by
``C = sum_{i != j} Cov(Z_i, Z_j)`` and ``U^T B U`` by
``V = sum_i (1 - c_i) Cov(Z_i) + c_i W_i^T W_i``. With two *independent* batches
``(Z, Z')``

    L_hat = -tr C - tr C' + <V, V'>_F

is unbiased for ``L`` (each sample covariance is unbiased and the batches are
independent); the same batch twice gives the one-batch (biased) estimate.
"""

from __future__ import annotations

__all__ = ["batch_moments", "ey_loss_and_gradient"]


def batch_moments(batch, weights, shrinkage, xp):
    """Centred projections of one batch and its estimates of ``tr(U^T A U)`` and ``U^T B U``.

    Returns ``(centred, total, tr_C, V)``: the centred projections per view, their sum,
    the trace of the between-view covariance and the (k, k) constraint estimate.
    """
    n = batch[0].shape[0]
    centred = []
    for X, W in zip(batch, weights, strict=False):
        Z = X @ W
        centred.append(Z - xp.mean(Z, axis=0))
    total = centred[0]
    for Z in centred[1:]:
        total = total + Z
    # sum_{i != j} tr(Z_i^T Z_j) = |sum_i Z_i|^2 - sum_i |Z_i|^2
    cross = xp.sum(total * total)
    V = None
    for Z, W, c in zip(centred, weights, shrinkage, strict=False):
        cross = cross - xp.sum(Z * Z)
        term = ((1 - c) / (n - 1)) * (Z.T @ Z)
        if c:
            term = term + c * (W.T @ W)
        V = term if V is None else V + term
    return centred, total, cross / (n - 1), V


def ey_loss_and_gradient(batch, weights, shrinkage, xp, other=None):
    """The EY loss estimate and its gradient in each view's weights.

    Parameters
    ----------
    batch : list of (b, p_i) arrays
        One mini-batch of every view (need not be centred: the projections are).
    weights : list of (p_i, k) arrays
    shrinkage : list of float
        ``c_i`` in [0, 1] per view.
    other : list of (b', p_i) arrays, optional
        An independent mini-batch: the unbiased two-batch estimate. None uses
        ``batch`` twice (the one-batch estimate).

    Returns
    -------
    loss : 0-d array
    gradients : list of (p_i, k) arrays
    """
    halves = [batch] if other is None else [batch, other]
    moments = [batch_moments(b, weights, shrinkage, xp) for b in halves]
    # The one-batch estimate is the two-batch one with both batches equal: each
    # term appears twice.
    twice = 2.0 if other is None else 1.0
    V_a, V_b = moments[0][3], moments[-1][3]
    loss = -twice * moments[0][2] + xp.sum(V_a * V_b)
    if other is not None:
        loss = loss - moments[1][2]
    gradients = []
    for i, (W, c) in enumerate(zip(weights, shrinkage, strict=False)):
        g = None
        # Each half's projections meet the other half's V (the product's gradient).
        for half, (centred, total, _, _), V_other in zip(halves, moments, (V_b, V_a), strict=False):
            Z = centred[i]
            n = half[i].shape[0]
            M = (Z - total) + (1 - c) * (Z @ V_other)
            # X^T M = X_c^T M because M's columns have zero mean.
            term = (twice * 2.0 / (n - 1)) * (half[i].T @ M)
            g = term if g is None else g + term
        if c:
            g = g + (2.0 * c) * (W @ (V_a + V_b))
        gradients.append(g)
    return loss, gradients
