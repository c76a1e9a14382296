"""Interchange with neuraloperator 2.0 (PyTorch): weights in both directions.

numlab's parameter names are neuraloperator's ``state_dict`` keys without tltorch's
``.tensor`` suffix on the spectral weights; only the shapes differ: a 1x1 convolution
weight is ``(c_out, c_in)`` here and ``(c_out, c_in, 1)`` there, a soft-gating weight
``(c,)`` here and ``(1, c, 1, ..., 1)`` there, a spectral bias ``(c,)`` here and
``(c, 1, ..., 1)`` there. A factorized spectral weight (TFNO) is stored as its factors under
tensorly-torch's names (``...weight.core``, ``...weight.weights``,
``...weight.factors.factor_<k>``), the same on both sides. torch is imported inside these
functions only.
"""

from __future__ import annotations

import numpy as np

from .. import _backend
from . import _factorized

__all__ = ["from_neuraloperator", "to_neuraloperator", "torch_name"]

_SPECTRAL_SUFFIX = ".weight.tensor"

# neuraloperator options and the values numlab's FNO implements.
_REQUIRED = {
    "norm": None,
    "complex_data": False,
    "resolution_scaling_factor": None,
    "fno_block_precision": "full",
    "stabilizer": None,
    "separable": False,
    "preactivation": False,
}
_ARCHITECTURE = (
    "n_modes", "hidden_channels", "in_channels", "out_channels", "n_layers",
    "lifting_channel_ratio", "projection_channel_ratio", "use_channel_mlp",
    "channel_mlp_expansion", "fno_skip", "channel_mlp_skip", "domain_padding",
    "positional_embedding",
)


def torch_name(name: str) -> str:
    """neuraloperator's ``state_dict`` key for numlab parameter ``name``."""
    if name.startswith("fno_blocks.convs.") and name.endswith(".weight"):
        return name + ".tensor"
    return name


def _numlab_name(key: str) -> str:
    if key.startswith("fno_blocks.convs.") and key.endswith(_SPECTRAL_SUFFIX):
        return key[: -len(".tensor")]
    return key


def _config_from_metadata(meta):
    import torch.nn.functional as F

    for key, wanted in _REQUIRED.items():
        if key in meta and meta[key] != wanted:
            raise ValueError(
                f"`source` uses {key}={meta[key]!r}, which numlab's FNO does not implement "
                f"(it needs {key}={wanted!r})"
            )
    if meta.get("args"):
        raise ValueError("`source` was built with positional arguments neuraloperator did not "
                         f"record by name ({meta['args']!r}); pass the architecture as keywords")
    if meta.get("non_linearity", F.gelu) is not F.gelu:
        raise ValueError(f"`source` uses non_linearity={meta['non_linearity']!r}; numlab's FNO "
                         "uses GELU (torch.nn.functional.gelu) only")
    max_modes = meta.get("max_n_modes")
    if max_modes is not None and list(max_modes) != list(meta["n_modes"]):
        raise ValueError(f"`source` uses max_n_modes={max_modes!r} different from n_modes; "
                         "numlab's FNO has no incremental modes")
    pe = meta.get("positional_embedding", "grid")
    if pe not in ("grid", None):
        grid = getattr(pe, "grid_boundaries", None)
        if type(pe).__name__ != "GridEmbeddingND" or any(list(b) != [0, 1] and list(b) != [0.0, 1.0]
                                                         for b in grid):
            raise ValueError(f"`source` uses positional_embedding={pe!r}; numlab implements "
                             "'grid' (GridEmbeddingND on [0, 1]^d) or None")
        pe = "grid"
    if meta.get("fixed_rank_modes"):
        raise ValueError(f"`source` uses fixed_rank_modes={meta['fixed_rank_modes']!r}, which "
                         "numlab's FNO does not implement (it needs fixed_rank_modes=False)")
    if meta.get("decomposition_kwargs"):
        raise ValueError(f"`source` uses decomposition_kwargs={meta['decomposition_kwargs']!r}, "
                         "which numlab's FNO does not implement (it needs none)")
    config = {k: meta[k] for k in _ARCHITECTURE if k in meta}
    config["factorization"] = _factorized.check_factorization(meta.get("factorization"))
    if config["factorization"] is not None:
        rank = meta.get("rank", 1.0)
        config["rank"] = list(rank) if isinstance(rank, (list, tuple)) else rank
    config["positional_embedding"] = pe
    config["n_modes"] = list(config["n_modes"])
    return config


def _config_from_shapes(state):
    """The architecture that the weight shapes determine (see from_neuraloperator)."""
    # The spectral weight's form tells the factorization: a dense tensor, a Tucker core,
    # CP weights, or TT cores only.
    head = "fno_blocks.convs.0.weight."
    if head + "tensor" in state:
        factorization, marker = None, _SPECTRAL_SUFFIX
    elif head + "core" in state:
        factorization, marker = "tucker", ".weight.core"
    elif head + "weights" in state:
        factorization, marker = "cp", ".weight.weights"
    elif head + "factors.factor_0" in state:
        factorization, marker = "tt", ".weight.factors.factor_0"
    else:
        raise ValueError("`source` must be a neuraloperator FNO state_dict; it has no "
                         f"'fno_blocks.convs.0{_SPECTRAL_SUFFIX}' entry (nor factors)")
    n_layers = 0
    while f"fno_blocks.convs.{n_layers}{marker}" in state:
        n_layers += 1
    factors = {k[len(head):]: v for k, v in state.items() if k.startswith(head)}
    if factorization is None:
        shape = tuple(int(k) for k in state[head + "tensor"].shape)
    else:
        shape = _factorized.full_shape(factorization, factors)
    hidden = int(shape[0])
    kept = list(shape[2:])
    config = {
        "n_modes": kept[:-1] + [2 * (kept[-1] - 1)],
        "hidden_channels": hidden,
        "n_layers": n_layers,
        "out_channels": int(state["projection.fcs.1.weight"].shape[0]),
        "projection_channel_ratio": int(state["projection.fcs.0.weight"].shape[0]) / hidden,
        "use_channel_mlp": "fno_blocks.channel_mlp.0.fcs.0.weight" in state,
        "factorization": factorization,
    }
    if factorization == "cp":
        config["rank"] = int(factors["weights"].shape[0])
    elif factorization == "tucker":
        config["rank"] = [int(r) for r in factors["core"].shape]
    elif factorization == "tt":
        mats = [factors[f"factors.factor_{k}"] for k in range(len(shape))]
        config["rank"] = [1] + [int(g.shape[2]) for g in mats]
    if "lifting.fcs.1.weight" in state:
        config["lifting_channel_ratio"] = int(state["lifting.fcs.0.weight"].shape[0]) / hidden
    else:
        config["lifting_channel_ratio"] = 0
    config["_lifting_in"] = int(state["lifting.fcs.0.weight"].shape[1])
    if config["use_channel_mlp"]:
        mid = int(state["fno_blocks.channel_mlp.0.fcs.0.weight"].shape[0])
        config["channel_mlp_expansion"] = mid / hidden
    for kind, prefix in (("fno_skip", "fno_blocks.fno_skips.0."),
                         ("channel_mlp_skip", "fno_blocks.channel_mlp_skips.0.")):
        if prefix + "conv.weight" in state:
            config[kind] = "linear"
        elif prefix + "weight" in state:
            config[kind] = "soft-gating"
    return config


def from_neuraloperator(cls, source, *, dtype=None, like=None, **overrides):
    """See :meth:`numlab.operators.FNO.from_neuraloperator`."""
    import torch

    if isinstance(source, torch.nn.Module):
        meta = getattr(source, "_init_kwargs", None)
        state = source.state_dict()
        state.pop("_metadata", None)
    elif isinstance(source, dict):
        state = dict(source)
        meta = state.pop("_metadata", None)
    else:
        raise TypeError("`source` must be a neuralop.models.FNO or its state_dict; got "
                        f"{type(source).__name__}")
    if meta is not None:
        config = _config_from_metadata(meta)
    else:
        config = _config_from_shapes(state)
        lifting_in = config.pop("_lifting_in")
        pe = overrides.get("positional_embedding", "grid")
        config["in_channels"] = lifting_in - (len(config["n_modes"]) if pe == "grid" else 0)
        for kind in ("fno_skip", "channel_mlp_skip"):
            if kind not in config and kind not in overrides and (
                    kind == "fno_skip" or config["use_channel_mlp"]):
                raise ValueError(f"`source` has no weights for {kind}: pass {kind}='identity' or "
                                 f"{kind}=None (a state_dict cannot tell them apart)")
    config.update(overrides)
    tensors = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            continue
        tensors[_numlab_name(key)] = value.detach().cpu().resolve_conj().numpy()
    if dtype is None:
        dtype = "float64" if tensors["projection.fcs.1.bias"].dtype == np.float64 else "float32"
    model = cls(**config, dtype=dtype, rng=0, like=like)
    arrays = {}
    for name, current in model.params.items():
        if name not in tensors:
            raise ValueError(f"`source` must hold the weight {torch_name(name)!r} of the "
                             f"architecture {config}; it does not")
        arrays[name] = tensors[name].reshape(current.shape)
    extra = sorted(set(tensors) - set(model.params))
    if extra:
        raise ValueError(f"`source` holds weights this architecture does not have: "
                         f"{[torch_name(e) for e in extra]} (architecture {config})")
    model.load_params(arrays)
    return model


def to_neuraloperator(model):
    """See :meth:`numlab.operators.FNO.to_neuraloperator`."""
    import torch
    from neuralop.models import FNO as TorchFNO

    cfg = dict(model.config)
    cfg.pop("dtype")
    cfg["n_modes"] = tuple(cfg["n_modes"])
    implementation = cfg.pop("implementation", None)
    if cfg.get("factorization") is None:
        cfg.pop("rank", None)
    else:
        # The same rank (a fraction gives the same ranks: tensorly-torch's rules).
        if isinstance(cfg["rank"], list):
            cfg["rank"] = tuple(cfg["rank"])
        cfg["implementation"] = implementation or "factorized"
    torch_model = TorchFNO(**cfg)
    reference = torch_model.state_dict()
    reference.pop("_metadata", None)
    state = {}
    for name, value in model.params.items():
        key = torch_name(name)
        host = np.ascontiguousarray(_backend.to_numpy(value))
        state[key] = torch.from_numpy(host.reshape(tuple(reference[key].shape)).copy())
    # assign=True keeps the dtypes of the numlab weights (float64 / complex128 too).
    torch_model.load_state_dict(state, strict=True, assign=True)
    return torch_model.eval()
