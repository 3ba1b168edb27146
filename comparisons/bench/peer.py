"""The public ConvNN layer (Kang & Farias' code, ``models/layers2d.py``, ``Conv2d_NN``, MIT) from a local clone.

It is loaded by file path from a checkout the user names with ``--peer-dir`` (never vendored
here), configured as the library's ``conv_nn2d`` (cosine, all tokens, no padding, no pixel
shuffle) and given the same Conv1d weight and bias, so both layers compute the same function.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from torch import nn

PEER_FILE = Path("models") / "layers2d.py"


def load_peer_convnn2d(peer_dir: str, layer: nn.Module) -> tuple[nn.Module | None, str]:
    """``Conv2d_NN`` from ``peer_dir`` with ``layer``'s weights, or ``(None, why not)``."""
    path = Path(peer_dir) / PEER_FILE
    if not path.is_file():
        return None, f"peer ConvNN skipped: {path} not found (clone mingikang31/Convolutional-Nearest-Neighbor there)"
    spec = importlib.util.spec_from_file_location("_peer_convnn_layers2d", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        peer = module.Conv2d_NN(
            in_channels=layer.in_channels, out_channels=layer.out_channels, K=layer.k, stride=layer.k, padding=0,
            sampling_type="all", num_samples=-1, sample_padding=0, shuffle_pattern="NA", shuffle_scale=1,
            magnitude_type="cosine", similarity_type="Col", aggregation_type="Col", lambda_param=0.5)
    except Exception as err:  # a changed upstream API: report it, don't fail the whole run
        return None, f"peer ConvNN skipped: could not build Conv2d_NN from {path}: {err!r}"
    peer.conv1d_layer.weight.data.copy_(layer.weight.detach())
    if layer.bias is not None:
        peer.conv1d_layer.bias.data.copy_(layer.bias.detach())
    return peer.to(device=layer.weight.device, dtype=layer.weight.dtype), f"peer ConvNN loaded from {path}"
