"""Shared by the operator tests: a layer with random weights and BatchNorm statistics, in eval mode."""

import torch


def randomized_eval(layer, seed):
    """Every parameter ~ N(0, 0.5^2), running means ~ N(0, 0.1^2), running variances in [0.5, 1.5).

    Random statistics make eval-mode BatchNorm a non-trivial affine map, so a test that writes a
    block out by hand checks the normalisation too. Returns the layer in eval mode.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.5)
        for name, b in layer.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(torch.randn(b.shape, generator=g, dtype=b.dtype) * 0.1)
            elif name.endswith("running_var"):
                b.copy_(torch.rand(b.shape, generator=g, dtype=b.dtype) + 0.5)
    return layer.eval()
