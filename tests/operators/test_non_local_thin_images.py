"""The non-local block on thin inputs: 1x1, 1x7, 7x1 images and a one-token sequence (issue 19).

``sub_sample`` max-pooled every axis by 2, and an axis of length 1 has no 2-window: torch
raised "Output size is too small". Now such an axis is not pooled (operators/_subsample.py
says why not to pad). Each output is compared with Wang et al.'s Eqs. 1-6 written out by hand
for the case: ``z_i = W(1/C sum_j f(theta_i, phi_j) g_j) + x_i`` with phi and g pooled by the
window computed here, parameters random (a fresh block is the identity, which would hide a
wrong y).
"""

import pytest
import torch
import torch.nn.functional as F

import operators

NAMES = [n for n in operators.available() if n.startswith("non_local_block")]


def _shapes(name):
    if name.endswith("3d"):
        return [(1, 1, 1), (2, 1, 7), (3, 7, 1), (1, 2, 7)]
    return [(1,), (3,)] if name.endswith("1d") else [(1, 1), (1, 7), (7, 1), (2, 7), (1, 2)]


def _by_hand(layer, x):
    spatial = x.shape[2:]
    window = tuple(2 if n >= 2 else 1 for n in spatial)  # the rule under test, stated independently
    if x.ndim == 5:  # the video block pools space only: time keeps window 1
        window = (1, *window[1:])
    pool = {3: F.max_pool1d, 4: F.max_pool2d, 5: F.max_pool3d}[x.ndim]
    flat = lambda t: t.flatten(2).transpose(1, 2)  # (B, C, *s) -> (B, N, C)  # noqa: E731
    mode = layer.mode
    if mode == "gaussian":
        theta, phi = flat(x), flat(pool(x, window, window))
    else:
        theta, phi = flat(layer.theta(x)), flat(pool(layer.phi[0](x), window, window))
    g = flat(pool(layer.g[0](x), window, window))
    if mode in ("gaussian", "embedded_gaussian"):
        a = (theta @ phi.transpose(1, 2)).softmax(-1)  # f = exp(theta^T phi), C = sum_j f
    elif mode == "dot_product":
        a = theta @ phi.transpose(1, 2) / phi.shape[1]  # C = N (the keys)
    else:  # concatenation: f = ReLU(w^T [theta_i, phi_j]), C = N
        w_q, w_k = layer.concat_project.weight[0].split(theta.shape[-1])
        a = torch.relu((theta @ w_q)[:, :, None] + (phi @ w_k)[:, None, :]) / phi.shape[1]
    y = (a @ g).transpose(1, 2).reshape(x.shape[0], -1, *spatial)
    return layer.W(y) + x


@pytest.mark.parametrize("name", NAMES)
def test_thin_inputs_follow_the_definition(name):
    torch.manual_seed(0)
    layer = operators.create(name, in_channels=4).double().eval()
    with torch.no_grad():
        for p in layer.parameters():
            p.normal_(0.0, 0.5)
    for spatial in _shapes(name):
        x = torch.randn(2, 4, *spatial, dtype=torch.float64, requires_grad=True)
        for path in ("auto", "reference"):
            z = layer(x, path=path)
            torch.testing.assert_close(z, _by_hand(layer, x), rtol=1e-10, atol=1e-12)  # float64, two orders
            z.sum().backward()
            assert torch.isfinite(x.grad).all()
            x.grad = None


def test_thin_images_have_a_query_map():
    # the footprint knows the unpooled axis: a 1x7 image's 3 keys cover pixels (0, 0..5)
    layer = operators.create("non_local_block2d", in_channels=4)
    nbhd = layer.neighborhood(torch.randn(1, 4, 1, 7))
    m = nbhd.query_map(3)
    assert m.shape == (1, 7)
    torch.testing.assert_close(m.sum(), torch.tensor(1.0, dtype=m.dtype))
    assert m[0, 6] == 0  # floor pooling: the last pixel is in no key
