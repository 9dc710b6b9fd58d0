import numpy as np
import pytest
import tensorflow as tf

from nasp_tf import counting
from nasp_tf.cnn import ops

EPS = ops.BN_EPSILON


def conv_ref(x, kernel, stride, pad, dilation=1, depthwise=False):
    """Direct PyTorch-style convolution: symmetric zero padding, NHWC."""
    if isinstance(stride, int):
        stride = (stride, stride)
    if isinstance(pad, int):
        pad = (pad, pad)
    x = np.pad(x, [(0, 0), (pad[0], pad[0]), (pad[1], pad[1]), (0, 0)])
    kh, kw = kernel.shape[:2]
    out_h = (x.shape[1] - dilation * (kh - 1) - 1) // stride[0] + 1
    out_w = (x.shape[2] - dilation * (kw - 1) - 1) // stride[1] + 1
    cout = kernel.shape[2] if depthwise else kernel.shape[3]
    out = np.zeros((x.shape[0], out_h, out_w, cout), np.float64)
    for i in range(out_h):
        for j in range(out_w):
            patch = x[:, i * stride[0]:i * stride[0] + dilation * (kh - 1) + 1:dilation,
                      j * stride[1]:j * stride[1] + dilation * (kw - 1) + 1:dilation, :]
            if depthwise:
                out[:, i, j, :] = np.einsum("bhwc,hwc->bc", patch, kernel[..., 0])
            else:
                out[:, i, j, :] = np.einsum("bhwc,hwco->bo", patch, kernel)
    return out


def pool_ref(x, k, stride, kind):
    p = (k - 1) // 2
    h, w = x.shape[1:3]
    out_h, out_w = (h + 2 * p - k) // stride + 1, (w + 2 * p - k) // stride + 1
    out = np.zeros((x.shape[0], out_h, out_w, x.shape[3]))
    for i in range(out_h):
        for j in range(out_w):
            r0, c0 = i * stride - p, j * stride - p
            window = x[:, max(r0, 0):r0 + k, max(c0, 0):c0 + k, :]  # real cells only
            out[:, i, j, :] = window.max(axis=(1, 2)) if kind == "max" else window.mean(axis=(1, 2))
    return out


def inference(op, x):
    # Fresh moving statistics (0, 1): inference-mode BN divides by sqrt(1 + eps).
    return op(tf.constant(x), training=False).numpy() * np.sqrt(1 + EPS)


@pytest.fixture
def x():
    return np.random.default_rng(0).normal(size=(2, 8, 8, 4)).astype(np.float32)


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("k", [3, 5])
def test_pools_pad_like_pytorch(x, kind, stride, k):
    op = ops.Pool(4, kind, k, stride)
    np.testing.assert_allclose(op(tf.constant(x)).numpy(), pool_ref(x, k, stride, kind),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("stride", [1, 2])
def test_relu_conv_bn_matches_direct_convolution(x, stride):
    op = ops.ReLUConvBN(4, 3, stride, affine=False)
    op.build(x.shape)
    want = conv_ref(np.maximum(x, 0), op.kernel.numpy(), stride, 1)
    np.testing.assert_allclose(inference(op, x), want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("stride", [1, 2])
def test_conv_1x3_then_3x1(x, stride):
    op = ops.FactorizedConvBN(4, 3, stride, affine=False)
    op.build(x.shape)
    mid = conv_ref(np.maximum(x, 0), op.kernel_1xk.numpy(), (1, stride), (0, 1))
    want = conv_ref(mid, op.kernel_kx1.numpy(), (stride, 1), (1, 0))
    np.testing.assert_allclose(inference(op, x), want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("stride", [1, 2])
def test_dilated_conv_with_stride(x, stride):
    op = ops.DilConv(4, 3, stride, affine=False, dilation=2)
    op.build(x.shape)
    dw = conv_ref(np.maximum(x, 0), op.depthwise.numpy(), stride, 2, dilation=2, depthwise=True)
    want = conv_ref(dw, op.pointwise.numpy(), 1, 0)
    np.testing.assert_allclose(inference(op, x), want, rtol=1e-4, atol=1e-5)


def test_factorized_reduce_samples_even_and_odd_pixels(x):
    op = ops.FactorizedReduce(4, affine=False)
    op.build(x.shape)
    r = np.maximum(x, 0)
    a = np.einsum("bhwc,co->bhwo", r[:, ::2, ::2, :], op.kernel_a.numpy()[0, 0])
    b = np.einsum("bhwc,co->bhwo", r[:, 1::2, 1::2, :], op.kernel_b.numpy()[0, 0])
    np.testing.assert_allclose(inference(op, x), np.concatenate([a, b], -1), rtol=1e-4,
                               atol=1e-5)


def test_sep_conv_applies_the_block_twice_with_one_stride(x):
    op = ops.SepConv(4, 3, 2, affine=False)
    y = op(tf.constant(x), training=True)
    assert y.shape == (2, 4, 4, 4)
    assert [w.shape for w in op.trainable_weights] == [(3, 3, 4, 1), (1, 1, 4, 4)] * 2


# REFERENCE.md §1.6: parameter counts at C=12, stride 1, affine=False.
PARAMS = {"conv_3x1_1x3": 864, "dil_conv_3x3": 252, "conv 1x1": 144, "conv 3x3": 1296,
          "sep_3x3": 504, "sep_5x5": 888, "sep_7x7": 1464, "conv_7x1_1x7": 2016,
          "dil_conv_5x5": 444, "skip_connect": 0, "max_pool_3x3": 0}


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_parameter_counts_match_the_reference_table(name):
    op = ops.build_op(name, 12, 1, affine=False, search=True)
    op.build((None, 8, 8, 12))
    assert counting.parameter_count(op) == PARAMS[name]


@pytest.mark.parametrize("name", sorted(ops.OPS))
@pytest.mark.parametrize("stride", [1, 2])
def test_every_op_keeps_channels_and_strides(name, stride):
    op = ops.build_op(name, 6, stride, affine=True, search=True)
    y = op(tf.random.normal((2, 8, 8, 6)), training=True)
    assert y.shape == (2, 8 // stride, 8 // stride, 6)
    assert tuple(op.compute_output_shape((2, 8, 8, 6))) == (2, 8 // stride, 8 // stride, 6)


def test_config_round_trip():
    op = ops.build_op("sep_conv_5x5", 6, 2, affine=True)
    clone = ops.SepConv.from_config(op.get_config())
    assert clone.spec == op.spec and clone.name == op.name


def test_unknown_op_is_a_value_error():
    with pytest.raises(ValueError, match="Received: op_name='conv_9x9'"):
        ops.build_op("conv_9x9", 4, 1, affine=False)


def test_batch_norm_updates_moving_statistics_like_pytorch():
    # PyTorch: running = 0.9 * running + 0.1 * batch statistic, from (0, 1),
    # with the unbiased variance (n / (n - 1), n = B * H * W) in the running
    # variance; the normalisation itself uses the biased one.
    bn = ops.BatchNorm(affine=False)
    x = np.random.default_rng(1).normal(2.0, 3.0, size=(4, 3, 3, 2)).astype(np.float32)
    y = bn(tf.constant(x), training=True).numpy()
    n = 4 * 3 * 3
    mean, biased = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
    np.testing.assert_allclose(bn.moving_mean.numpy(), 0.1 * mean, rtol=1e-5)
    np.testing.assert_allclose(bn.moving_variance.numpy(), 0.9 + 0.1 * biased * n / (n - 1),
                               rtol=1e-5)
    np.testing.assert_allclose(y, (x - mean) / np.sqrt(biased + EPS), rtol=1e-4, atol=1e-5)
