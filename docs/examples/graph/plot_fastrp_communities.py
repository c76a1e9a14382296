r"""
FastRP embedding of a graph with communities
============================================

:func:`numlab.graph.fastrp` embeds the nodes of a graph by very sparse random
projections of the powers of its transition matrix (Chen et al., CIKM 2019). With
:math:`S` the adjacency matrix, :math:`D` its diagonal of degrees, the transition matrix
:math:`A = D^{-1} S`, a very sparse random matrix :math:`R` and the degree scaling
:math:`L = D^{\beta}`,

.. math::

   N_1 = A L R, \qquad N_i = A N_{i-1}, \qquad U = \sum_{i=1}^{q} \alpha_i\,
   \operatorname{normalize}(N_i).

On a degree-heterogeneous graph with planted communities we

1. embed the nodes (128 dimensions) and draw them in 2-D (principal components);
2. classify the communities from the embeddings, for a few values of the degree
   exponent :math:`\beta` (``beta=``).
"""

import matplotlib.pyplot as plt
import networkx as nx
import numpy as np
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

import numlab as nl

# %%
# A graph with communities
# ------------------------
# A stochastic block model with 6 communities of 250 nodes, edge probability
# :math:`p_{\mathrm{in}} = 0.04` inside a community and :math:`p_{\mathrm{out}} = 0.007`
# between two: about half of each node's edges stay inside its community.

sizes = [250] * 6
p_in, p_out = 0.04, 0.007
probs = np.full((6, 6), p_out) + np.eye(6) * (p_in - p_out)
G = nx.stochastic_block_model(sizes, probs, seed=0)
labels = np.repeat(np.arange(6), 250)
print(G)

# %%
# The embedding, in 2-D
# ---------------------

U = nl.graph.fastrp(G, 128, rng=0)
xy = PCA(2).fit_transform(U)

fig, ax = plt.subplots(figsize=(5, 5))
ax.scatter(xy[:, 0], xy[:, 1], c=labels, cmap="tab10", s=6)
ax.set_title("FastRP (dim 128), first two principal components")
ax.set_xticks([])
ax.set_yticks([])
fig.tight_layout()

# %%
# Community classification
# ------------------------
# Logistic regression on the embeddings, 5-fold cross-validation.

for beta in (-0.9, -0.5, 0.0):
    U = nl.graph.fastrp(G, 64, beta=beta, rng=0)
    score = cross_val_score(LogisticRegression(max_iter=300), U, labels, cv=5).mean()
    print(f"beta = {beta:5.2f}: accuracy {score:.3f}")
