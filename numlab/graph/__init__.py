"""Graph algorithms: FastRP node embeddings (Chen et al., CIKM 2019).

- :func:`fastrp`: node embeddings from very sparse random projections of the powers of
  the transition matrix, for networkx graphs, ``scipy.sparse`` / ``cupyx`` adjacency
  matrices and dense arrays.
"""

from ._fastrp import fastrp

__all__ = ["fastrp"]
