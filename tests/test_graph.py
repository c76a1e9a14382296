"""Tests of nl.graph.fastrp against a direct SciPy transcription of the authors' algorithm."""

import networkx as nx
import numpy as np
import pytest
import scipy.sparse

import numlab as nl
from numlab import _backend
from numlab.graph._convert import networkx_to_csr
from numlab.random_projection import very_sparse_random_matrix

from conftest import cupy_usable


def reference_fastrp(S, dim, weights, beta, normalize, standardize, seed):
    """FastRP as GTmac/FastRP computes it (float64), with numlab's R for the same seed."""
    S = scipy.sparse.csr_matrix(S, dtype=np.float64)
    deg = np.asarray(S.sum(axis=1)).ravel()
    with np.errstate(divide="ignore"):
        A = scipy.sparse.diags(np.where(deg > 0, 1.0 / deg, 0.0)) @ S
        L = np.where(deg > 0, deg**beta, 1.0)
    R = very_sparse_random_matrix(dim, S.shape[0], rng=seed)  # (dim, n), as sklearn's components_
    current = A @ (R @ scipy.sparse.diags(L)).T
    current = current.toarray()
    U = np.zeros_like(current)
    for i, w in enumerate(weights):
        if i:
            current = A @ current
        term = current
        if normalize:
            norms = np.linalg.norm(current, axis=1, keepdims=True)
            term = current / np.where(norms > 0, norms, 1.0)
        U += w * term
    if standardize:
        std = U.std(axis=0)
        U = (U - U.mean(axis=0)) / np.where(std > 0, std, 1.0)
    return U


def _community_graph(n=600, blocks=6, seed=0):
    k = n // blocks
    G = nx.planted_partition_graph(blocks, k, 12 / k, 1.5 / n, seed=seed)
    return G, np.repeat(np.arange(blocks), k)


@pytest.mark.parametrize(
    ("weights", "beta", "normalize", "standardize"),
    [
        ((0.0, 0.0, 1.0, 6.0), -0.1, True, True),
        ((1.0, 1.0, 7.81, 45.28), -0.628, True, False),
        ((0.5, 2.0), 0.0, False, True),
        ((0.0, 3.0), 0.0, True, True),  # the sparse N_1 and N_2 steps only
        ((1.0,), -0.3, True, True),  # N_1 only
    ],
)
def test_matches_reference(weights, beta, normalize, standardize):
    G, _ = _community_graph()
    S = nx.to_scipy_sparse_array(G, format="csr", dtype=np.float64)
    ours = nl.graph.fastrp(
        scipy.sparse.csr_matrix(S), 32, weights=weights, beta=beta, normalize=normalize,
        standardize=standardize, rng=12,
    )
    assert ours.dtype == np.float64
    expected = reference_fastrp(S, 32, weights, beta, normalize, standardize, 12)
    np.testing.assert_allclose(ours, expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_power_law_graph_matches_reference(dtype):
    # Hubs and leaves: N_1 has both rows stored dense (more than dim / 8 possible
    # nonzeros) and rows stored by their nonzeros; both must give the reference.
    G = nx.expected_degree_graph((np.arange(2500) + 5.0) ** -0.6 * 900, seed=3, selfloops=False)
    S = nx.to_scipy_sparse_array(G, format="csr", dtype=np.float64)
    dim = 128
    R = very_sparse_random_matrix(dim, S.shape[0], rng=5)
    bound = np.minimum(S @ np.diff(R.tocsc().indptr), dim)  # nonzeros per row of N_1, at most
    assert (bound > dim // 8).sum() > 50 and (bound[np.diff(S.indptr) > 0] <= dim // 8).sum() > 50
    ours = nl.graph.fastrp(scipy.sparse.csr_matrix(S, dtype=dtype), dim, weights=(0.0, 1.0, 1.0, 6.0), rng=5)
    assert ours.dtype == dtype
    expected = reference_fastrp(S, dim, (0.0, 1.0, 1.0, 6.0), 0.0, True, True, 5)
    tol = 1e-9 if dtype == np.float64 else 2e-3
    np.testing.assert_allclose(ours, expected, rtol=tol, atol=tol)


def test_networkx_input_and_float32():
    G, _ = _community_graph(seed=1)
    S = nx.to_scipy_sparse_array(G, format="csr", dtype=np.float64)
    U32 = nl.graph.fastrp(G, 24, rng=3)
    assert U32.dtype == np.float32 and U32.shape == (G.number_of_nodes(), 24)
    expected = reference_fastrp(S, 24, (0, 0, 1, 6), 0.0, True, True, 3)
    np.testing.assert_allclose(U32, expected, rtol=1e-3, atol=1e-3)
    U64 = nl.graph.fastrp(G, 24, rng=3, dtype=np.float64)
    np.testing.assert_allclose(U64, expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("kind", ["weighted", "directed", "selfloops", "multigraph", "labels"])
def test_networkx_conversion_matches_networkx(kind):
    rng = np.random.default_rng(4)
    G = nx.gnm_random_graph(80, 300, seed=2, directed=kind == "directed")
    if kind == "multigraph":
        G = nx.MultiGraph(G)
        G.add_edges_from([(0, 1), (0, 1), (5, 5)])
    if kind in ("weighted", "directed", "multigraph"):
        for u, v, d in G.edges(data=True):
            d["weight"] = float(rng.uniform(0.1, 3.0))
    if kind == "selfloops":
        G.add_edges_from([(3, 3), (7, 7)])
    if kind == "labels":
        G = nx.relabel_nodes(G, {v: f"node{(v * 37) % 80}" for v in G})
    ours = networkx_to_csr(G)
    expected = nx.to_scipy_sparse_array(G, nodelist=list(G), format="csr")
    np.testing.assert_allclose(ours.toarray(), expected.toarray())
    unweighted = networkx_to_csr(G, weight=None)
    np.testing.assert_allclose(unweighted.toarray(), nx.to_scipy_sparse_array(G, nodelist=list(G), weight=None).toarray())


def test_weighted_directed_isolated_selfloops():
    rng = np.random.default_rng(5)
    G = nx.gnm_random_graph(200, 900, seed=3, directed=True)
    for u, v, d in G.edges(data=True):
        d["w"] = float(rng.uniform(0.5, 2.0))
    G.add_nodes_from([200, 201])  # isolated
    G.add_edge(4, 4, w=1.5)
    U = nl.graph.fastrp(G, 16, weight="w", beta=-0.5, rng=1, dtype=np.float64)
    S = nx.to_scipy_sparse_array(G, nodelist=list(G), weight="w", format="csr")
    np.testing.assert_allclose(U, reference_fastrp(S, 16, (0, 0, 1, 6), -0.5, True, True, 1), rtol=1e-9, atol=1e-9)
    assert np.all(np.isfinite(U))
    np.testing.assert_array_equal(U[200], U[201])  # isolated nodes: zero before scaling


def test_backends_dense_adjacency(backend):
    G, _ = _community_graph(n=120, blocks=4, seed=2)
    S = nx.to_numpy_array(G)
    expected = reference_fastrp(S, 12, (0, 1, 1, 6), -0.3, True, True, 8)
    U = nl.graph.fastrp(backend.asarray(S), 12, weights=(0, 1, 1, 6), beta=-0.3, rng=8)
    assert _backend.namespace(U) == _backend.namespace(backend.asarray(S))
    assert U.dtype == backend.dtype
    np.testing.assert_allclose(backend.to_numpy(U), expected, rtol=backend.rtol * 100, atol=backend.rtol * 100)


def test_classification_quality_close_to_reference():
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    G, y = _community_graph(n=600, blocks=6, seed=4)
    S = nx.to_scipy_sparse_array(G, format="csr")

    def accuracy(U):
        Xtr, Xte, ytr, yte = train_test_split(U, y, test_size=0.5, random_state=0, stratify=y)
        return LogisticRegression(max_iter=200).fit(Xtr, ytr).score(Xte, yte)

    ours = accuracy(nl.graph.fastrp(G, 32, rng=0))
    reference = accuracy(reference_fastrp(S, 32, (0, 0, 1, 6), 0.0, True, True, 0))
    assert ours >= reference - 0.02
    assert ours > 0.8  # six planted communities are clearly separated


@pytest.mark.parametrize(
    ("G", "kwargs", "error", "match"),
    [
        (nx.path_graph(5), {"dim": 0}, ValueError, "dim"),
        (nx.path_graph(5), {"dim": -4}, ValueError, "dim"),
        (nx.Graph(), {}, ValueError, "at least one node"),
        (nx.empty_graph(4), {}, ValueError, "at least one edge"),
        (nx.path_graph(5), {"weights": ()}, ValueError, "weights"),
        (nx.path_graph(5), {"weights": (0, 0)}, ValueError, "weights"),
        (nx.path_graph(5), {"weights": (1, np.nan)}, ValueError, "weights"),
        (nx.path_graph(5), {"beta": np.inf}, ValueError, "beta"),
        (nx.path_graph(5), {"rng": np.random.RandomState(0)}, TypeError, "rng"),
        (nx.path_graph(5), {"normalize": "yes"}, TypeError, "normalize"),
        (np.ones((3, 4)), {}, ValueError, "square"),
        (scipy.sparse.csr_matrix(np.ones((3, 4))), {}, ValueError, "square"),
        (-np.ones((3, 3)), {}, ValueError, "non-negative"),
        (np.array([[0.0, np.nan], [1.0, 0.0]]), {}, ValueError, "finite"),
        ([[0, 1], [1, 0]], {}, TypeError, "networkx graph"),
        (scipy.sparse.csr_matrix(np.ones((3, 3)) + 1j), {}, TypeError, "`G` must be real"),
        (nx.path_graph(5), {"dtype": np.int32}, TypeError, "`dtype` must be None, float32 or float64"),
        (np.ones((3, 3)), {"dtype": np.complex128}, TypeError, "`dtype` must be None, float32"),
        (scipy.sparse.csr_matrix(np.ones((3, 3))), {"dtype": "foo"}, TypeError, "`dtype` must be None"),
        (np.ones((3, 3)), {"dtype": np.float16}, TypeError, "`dtype` must be None, float32"),
    ],
)
def test_bad_input(G, kwargs, error, match):
    with pytest.raises(error, match=match):
        nl.graph.fastrp(G, **{"dim": 8, **kwargs})


@pytest.mark.parametrize("value", ["heavy", 1 + 2j])
@pytest.mark.parametrize("multigraph", [False, True])
def test_non_numeric_networkx_weight(value, multigraph):
    G = (nx.MultiGraph if multigraph else nx.Graph)(nx.path_graph(4))
    nx.set_edge_attributes(G, value, "weight")
    with pytest.raises(TypeError, match="`G` must have real numbers as edge weights"):
        nl.graph.fastrp(G, 4)


def test_string_dtype_still_accepted():
    assert nl.graph.fastrp(nx.path_graph(5), 4, dtype="float64", rng=0).dtype == np.float64


def test_negative_networkx_weight():
    G = nx.path_graph(4)
    G[1][2]["weight"] = -1.0
    with pytest.raises(ValueError, match="non-negative"):
        nl.graph.fastrp(G, 4)


@pytest.mark.gpu
@pytest.mark.skipif(not cupy_usable(), reason="cupy.is_available() is false")
def test_gpu_matches_cpu():
    import cupy
    import cupyx.scipy.sparse

    G, _ = _community_graph(n=3000, blocks=10, seed=6)
    S = networkx_to_csr(G, dtype=np.float32)
    cpu = nl.graph.fastrp(S, 64, rng=2)
    gpu = nl.graph.fastrp(cupyx.scipy.sparse.csr_matrix(S), 64, rng=2)
    assert isinstance(gpu, cupy.ndarray) and gpu.dtype == np.float32
    np.testing.assert_allclose(cupy.asnumpy(gpu), cpu, rtol=1e-3, atol=1e-3)
