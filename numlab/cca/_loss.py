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
independent); the same batch twice gives the one-batch (biased) estimate
``-2 tr C + |V|^2``.
"""

from __future__ import annotations

__all__ = ["batch_moments", "ey_loss_and_gradient"]


def batch_moments(batch, weights, shrinkage, xp):
    """The estimates of ``tr(U^T A U)`` and ``U^T B U`` on one batch: ``(tr_C, V)``."""
    n = batch[0].shape[0]
    total, squares, V = None, 0.0, None
    for X, W, c in zip(batch, weights, shrinkage, strict=True):
        Z = X @ W
        Z = Z - xp.mean(Z, axis=0)
        total = Z if total is None else total + Z
        squares = squares + xp.sum(Z * Z)
        term = ((1 - c) / (n - 1)) * (Z.T @ Z)
        if c:
            term = term + c * (W.T @ W)
        V = term if V is None else V + term
    # sum_{i != j} tr(Z_i^T Z_j) = |sum_i Z_i|^2 - sum_i |Z_i|^2
    return (xp.sum(total * total) - squares) / (n - 1), V


def ey_loss_and_gradient(batch, weights, shrinkage, xp, *, groups=2):
    """The EY loss estimate and its gradient in each view's weights.

    Parameters
    ----------
    batch : list of (b, p_i) arrays
        One mini-batch of every view (need not be centred: each group is).
    weights : list of (p_i, k) arrays
    shrinkage : list of float
        ``c_i`` in [0, 1] per view.
    groups : {2, 1}
        2: the unbiased estimate from the batch's two halves (independent
        mini-batches; an odd last row is left out); 1: the one-batch estimate.

    Returns
    -------
    loss : 0-d array
    gradients : list of (p_i, k) arrays
    """
    h = batch[0].shape[0] // groups
    rows = h * groups
    k = weights[0].shape[1]
    # Both halves at once: the projections of the batch viewed as (groups, h, k).
    centred, V, total, squares = [], None, None, 0.0
    for X, W, c in zip(batch, weights, shrinkage, strict=True):
        Z = xp.reshape((X[:rows, ...] if rows < X.shape[0] else X) @ W, (groups, h, k))
        Z = Z - xp.mean(Z, axis=1, keepdims=True)
        centred.append(Z)
        total = Z if total is None else total + Z
        squares = squares + xp.sum(Z * Z)
        term = ((1 - c) / (h - 1)) * (xp.matrix_transpose(Z) @ Z)
        if c:
            term = term + c * (W.T @ W)
        V = term if V is None else V + term
    # Sum over groups of tr C_g (each the between-view covariance of one group).
    cross = (xp.sum(total * total) - squares) / (h - 1)
    loss = -(2.0 / groups) * cross + xp.sum(V[0, ...] * V[-1, ...])
    V_other = xp.flip(V, axis=0)  # each group's projections meet the other's V
    gradients = []
    for X, W, Z, c in zip(batch, weights, centred, shrinkage, strict=True):
        M = (Z - total) + (1 - c) * (Z @ V_other)
        # X^T M = X_c^T M because M's columns have zero mean within each group.
        Xr = X[:rows, ...] if rows < X.shape[0] else X
        g = (4.0 / (groups * (h - 1))) * (Xr.T @ xp.reshape(M, (rows, k)))
        if c:
            g = g + (4.0 * c / groups) * (W @ xp.sum(V, axis=0))
        gradients.append(g)
    return loss, gradients
