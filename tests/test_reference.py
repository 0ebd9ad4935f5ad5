"""The numpy reference CNN against the C++ layer dumps, and its building blocks on small data."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mtcnn_lab.lab.layers import compare_with_cpp_layers
from mtcnn_lab.nets import reference
from mtcnn_lab.weights.netspec import FC, Conv, MaxPool, PReLU

from .conftest import require_shared

DUMPS = [(image, net) for image in ("sample1", "sample2", "multi_face_f140") for net in ("pnet", "rnet", "onet")]
# Float32 summation-order noise (OpenBLAS sgemm vs numpy); values reach ~13.
LAYER_TOLERANCE = 2e-5  # the README claims <= 1.3e-5 per layer against the C++ dumps


@pytest.mark.parametrize(("image", "net"), DUMPS)
def test_every_layer_matches_cpp_chained(image, net, openface_weights):
    dump = require_shared("reference", "layers", f"{image}_{net}.npz")
    spec = openface_weights.nets()[net]
    for group, layers in compare_with_cpp_layers(spec, dump).items():
        assert set(spec.layer_keys()) <= set(layers), f"{group}: some layers were not compared"
        for key, diff in layers.items():
            assert diff["max_abs"] <= LAYER_TOLERANCE, f"{image} {net} {group} {key}: {diff}"


@pytest.mark.parametrize(("image", "net"), DUMPS)
def test_each_layer_alone_matches_cpp(image, net, openface_weights):
    """Fed the C++ input of each layer: PReLU, pooling and the FC flatten are bit-exact."""
    dump = require_shared("reference", "layers", f"{image}_{net}.npz")
    for group, layers in compare_with_cpp_layers(openface_weights.nets()[net], dump, chained=False).items():
        for key, diff in layers.items():
            exact = key.endswith(("_prelu", "_pool", "_fcin"))
            limit = 0.0 if exact else LAYER_TOLERANCE
            assert diff["max_abs"] <= limit, f"{image} {net} {group} {key}: {diff}"


def naive_conv(x, w, b):
    n_out, n_in, kh, kw = w.shape
    n, _, h, wd = x.shape
    out = np.zeros((n, n_out, h - kh + 1, wd - kw + 1))
    for dy in range(kh):
        for dx in range(kw):
            out += np.einsum("nchw,oc->nohw", x[:, :, dy:dy + h - kh + 1, dx:dx + wd - kw + 1].astype(np.float64),
                             w[:, :, dy, dx].astype(np.float64))
    return out + b[None, :, None, None]


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 3), st.integers(1, 4), st.integers(1, 5), st.integers(1, 3), st.integers(1, 3),
       st.integers(0, 6), st.integers(0, 6), st.integers(0, 2**32 - 1))
def test_conv_is_cross_correlation(n, c, o, kh, kw, extra_h, extra_w, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, kh + extra_h, kw + extra_w)).astype(np.float32)
    layer = Conv(rng.standard_normal((o, c, kh, kw)).astype(np.float32), rng.standard_normal(o).astype(np.float32))
    np.testing.assert_allclose(reference.apply_layer(x, layer), naive_conv(x, layer.weight, layer.bias), atol=1e-4)


@settings(max_examples=60, deadline=None)
@given(arrays(np.float32, st.tuples(st.integers(1, 3), st.integers(1, 6), st.integers(1, 5)),
              elements=st.floats(-100, 100, width=32)),
       st.lists(st.floats(-3, 3, width=32), min_size=6, max_size=6))
def test_prelu_is_exact(x, slopes):
    slopes = np.array(slopes[: x.shape[1]], np.float32)
    expected = np.where(x >= 0, x, x * slopes[None, :, None])
    assert np.array_equal(reference.apply_layer(x, PReLU(slopes)), expected)


@pytest.mark.parametrize(("size", "kernel", "stride", "expected"),
                         [(22, 3, 2, 11), (9, 3, 2, 4), (46, 3, 2, 23), (21, 3, 2, 10), (8, 2, 2, 4),
                          (11, 2, 2, 6), (10, 2, 2, 5), (3, 3, 2, 1)])
def test_pool_output_size_rounds_half_away(size, kernel, stride, expected):
    assert reference.pool_output_size(size, kernel, stride) == expected


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 12), st.integers(2, 12), st.sampled_from([(2, 2), (3, 2), (3, 3), (2, 1)]),
       st.integers(0, 2**32 - 1))
def test_max_pool_clips_edge_windows(h, w, ks, seed):
    k, s = ks
    if h < k or w < k:
        return
    x = np.random.default_rng(seed).standard_normal((1, 2, h, w)).astype(np.float32)
    out = reference.apply_layer(x, MaxPool(k, k, s, s))
    oh, ow = reference.pool_output_size(h, k, s), reference.pool_output_size(w, k, s)
    assert out.shape == (1, 2, oh, ow)
    for i in range(oh):
        for j in range(ow):
            window = x[0, :, i * s:min(i * s + k, h), j * s:min(j * s + k, w)]
            assert np.array_equal(out[0, :, i, j], window.max(axis=(1, 2)))


def test_fc_flattens_each_map_transposed():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    layer = FC(rng.standard_normal((7, 60)).astype(np.float32), rng.standard_normal(7).astype(np.float32))
    flat = np.array([[x[n, c, y, xx] for c in range(3) for xx in range(5) for y in range(4)] for n in range(2)])
    np.testing.assert_allclose(reference.apply_layer(x, layer), flat @ layer.weight.T + layer.bias, rtol=1e-5)


def test_fc_on_as_many_maps_as_inputs_is_per_pixel():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 32, 3, 4)).astype(np.float32)
    layer = FC(rng.standard_normal((6, 32)).astype(np.float32), rng.standard_normal(6).astype(np.float32))
    out = reference.apply_layer(x, layer)
    assert out.shape == (1, 6, 3, 4)
    np.testing.assert_allclose(out[0, :, 2, 1], layer.weight @ x[0, :, 2, 1] + layer.bias, rtol=1e-5)


def test_forward_layers_names_match_the_cpp_dumps(bundled_weights):
    x = np.zeros((2, 3, 48, 48), np.float32)
    keys = set(reference.forward_layers(bundled_weights.onet, x))
    assert keys == {"in", "l11_fcin", *bundled_weights.onet.layer_keys()}
