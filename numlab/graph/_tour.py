"""``numlab tour`` entries of nl.graph."""

from __future__ import annotations

import numpy as np

from .._tour import Demo


def fastrp_demo(quick: bool) -> Demo:
    import networkx as nx
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    from . import fastrp

    blocks, size = (5, 200) if quick else (10, 400)
    n = blocks * size
    G = nx.planted_partition_graph(blocks, size, 10 / size, 3 / n, seed=0)
    labels = np.repeat(np.arange(blocks), size)
    U = fastrp(G, 64, rng=0)
    score = float(cross_val_score(LogisticRegression(max_iter=300), U, labels, cv=3).mean())
    majority = 1 / blocks
    return Demo(
        problem=f"FastRP embedding (dim 64) of a {n}-node planted partition, {blocks} communities",
        result=f"community classification accuracy {score:.3f} (3-fold logistic regression)",
        check=f"vs chance level {majority:.2f}; random vectors would stay at chance",
        ok=score > 0.8,
    )


def fastrp_reference_demo(quick: bool) -> Demo:
    import networkx as nx
    import scipy.sparse

    from ..random_projection import very_sparse_random_matrix
    from . import fastrp

    G = nx.karate_club_graph()
    S = nx.to_scipy_sparse_array(G, format="csr", dtype=np.float64)
    U = fastrp(G, 16, beta=-0.5, rng=1, dtype=np.float64)
    # The authors' algorithm written out with SciPy, using the same random matrix.
    deg = np.asarray(S.sum(axis=1)).ravel()
    A = scipy.sparse.diags(1 / deg) @ S
    current = (A @ (very_sparse_random_matrix(16, len(deg), rng=1) @ scipy.sparse.diags(deg**-0.5)).T).toarray()
    total = np.zeros_like(current)
    for i, w in enumerate((0.0, 0.0, 1.0, 6.0)):
        if i:
            current = A @ current
        total += w * current / np.linalg.norm(current, axis=1, keepdims=True)
    reference = (total - total.mean(0)) / total.std(0)
    err = float(np.max(np.abs(U - reference)))
    return Demo(
        problem="FastRP of Zachary's karate club (34 nodes), dim 16",
        result=f"embedding {U.shape}, column means {abs(U.mean(0)).max():.1e}",
        check=f"vs the authors' algorithm in SciPy (same R): max diff {err:.1e}",
        ok=err < 1e-9,
    )


DEMOS = [fastrp_demo, fastrp_reference_demo]
