"""Candidate CNN operations of the DARTS and NASP search spaces, as Keras layers.

Every op maps [B, H, W, C] to [B, H/stride, W/stride, C] and follows the
PyTorch reference numerically where that is cheap (docs/reference.md §1, §9):
symmetric explicit padding for strided convs and pools, max-pool padding with
-inf, average pools that do not count padding, BN momentum 0.9 and epsilon
1e-5, no conv biases.

Each op is split in two: a Keras layer that holds the weights (created in
`build`, or for the kernels of the search network's ops, rows of variables
stacked over a cell's edges: `bind_kernel`), and a pure function
`apply_op(spec, x, params, training)` of a hashable static `spec` and the
weights passed explicitly. The split lets the supernet trace one function per
(op set, shape, stride) and call it on every edge with that edge's weights,
instead of tracing every edge anew: a search graph of ~100 edges then
compiles in seconds instead of minutes. `build_op(name, channels, stride,
affine)` is the registry.
"""

import math

import keras
import numpy as np
import tensorflow as tf

BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5
# Under a mixed-precision policy the classifiers still compute in float32, so
# the logits, losses and their gradients are float32 (Keras's advice for the
# last layer).
LOGITS_DTYPE = "float32"


def torch_uniform(fan_in):
    """PyTorch's default conv/linear init, U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    limit = 1.0 / math.sqrt(fan_in)
    return keras.initializers.RandomUniform(-limit, limit)


def _pad(x, pad_h, pad_w, value=0.0):
    if pad_h == 0 and pad_w == 0:
        return x
    return tf.pad(x, [[0, 0], [pad_h, pad_h], [pad_w, pad_w], [0, 0]],
                  constant_values=value)


def _depthwise(x, kernel, stride, dilation):
    """Depthwise conv with PyTorch's symmetric padding of dilation*(k-1)/2."""
    k = kernel.shape[0]
    x = _pad(x, dilation * (k - 1) // 2, dilation * (k - 1) // 2)
    if dilation > 1 and stride > 1:
        # TF refuses stride > 1 with dilation > 1; subsampling the stride-1
        # result is exactly the strided convolution.
        y = tf.nn.depthwise_conv2d(x, kernel, [1, 1, 1, 1], "VALID",
                                   dilations=[dilation, dilation])
        return y[:, ::stride, ::stride, :]
    return tf.nn.depthwise_conv2d(x, kernel, [1, stride, stride, 1], "VALID",
                                  dilations=[dilation, dilation])


def local_variables(params):
    """The replica-local components of distributed variables in nested tuples.

    A traced function that receives a distributed variable captures it by
    reference, so a trace shared between edges would silently run the first
    edge's weights on every edge. Its local component is a plain variable,
    passed by handle like any other (tf.distribute private API; outside a
    strategy this returns `params` unchanged).
    """
    if isinstance(params, tuple):
        return tuple(local_variables(p) for p in params)
    local = getattr(params, "_get_on_device_or_primary", None)
    return local() if local is not None else params


# A `training` value for the ops: normalise with the batch's statistics, as in
# training, but leave the moving averages alone (NASP's architecture step runs
# the selected op a second time, for its gradient; its statistics are already
# updated by the first run).
FROZEN_STATISTICS = "frozen_statistics"


def batch_norm_apply(x, params, affine, training):
    """Batch norm over [B, H, W] with (moving_mean, moving_variance[, gamma, beta]).

    `training` is False (moving averages), True (batch statistics, and the
    averages updated) or FROZEN_STATISTICS (batch statistics only).
    """
    moving_mean, moving_variance = params[0], params[1]
    gamma, beta = (params[2], params[3]) if affine else (None, None)
    if x.dtype != tf.float32:
        # Mixed precision: statistics and normalisation in float32 (as Keras's
        # BatchNormalization), the result back in the compute dtype.
        return tf.cast(batch_norm_apply(tf.cast(x, tf.float32), params, affine, training),
                       x.dtype)
    if not training:
        mean, variance = moving_mean, moving_variance
    else:
        mean, variance = tf.nn.moments(x, axes=[0, 1, 2])
        if training is not FROZEN_STATISTICS:
            # As PyTorch: the running variance takes the unbiased batch variance
            # (n / (n - 1), n = B*H*W); the normalisation uses the biased one.
            count = tf.cast(tf.reduce_prod(tf.shape(x)[:3]), variance.dtype)
            unbiased = tf.math.divide_no_nan(variance * count, count - 1.0)
            moving_mean.assign(moving_mean * BN_MOMENTUM + mean * (1.0 - BN_MOMENTUM))
            moving_variance.assign(moving_variance * BN_MOMENTUM
                                   + unbiased * (1.0 - BN_MOMENTUM))
    return tf.nn.batch_normalization(x, mean, variance, beta, gamma, BN_EPSILON)


class BatchNorm(keras.layers.Layer):
    """Batch normalisation with PyTorch's momentum (0.1, i.e. Keras 0.9) and epsilon.

    Written out (rather than `keras.layers.BatchNormalization`) so that its
    variables can be passed to the ops' shared traced functions.

    Args:
      affine: learnable scale (ones) and shift (zeros).
    """

    def __init__(self, affine=True, **kwargs):
        super().__init__(**kwargs)
        self.affine = bool(affine)

    def build(self, input_shape):
        channels = (input_shape[-1],)
        # On-read synchronisation: under a MirroredStrategy every replica
        # updates its own statistics with no cross-replica sync inside the
        # step (which nested traced functions could not do); a read averages.
        for name, init in (("moving_mean", "zeros"), ("moving_variance", "ones")):
            # Never cast to a mixed-precision compute dtype: they are assigned.
            setattr(self, name, keras.Variable(
                init, shape=channels, trainable=False, aggregation="mean",
                synchronization="on_read", autocast=False, name=name))
        if self.affine:
            self.gamma = self.add_weight(name="gamma", shape=channels, initializer="ones",
                                         autocast=False)
            self.beta = self.add_weight(name="beta", shape=channels, initializer="zeros",
                                        autocast=False)

    def params(self):
        names = ("moving_mean", "moving_variance") + (("gamma", "beta") if self.affine else ())
        values = tuple(getattr(self, n).value for n in names)
        if not isinstance(values[0], tf.Variable):
            # In a keras.StatelessScope (a Choice's shared trace) values are
            # tensors: the statistics are assigned through their Keras
            # variables, whose new values the scope collects.
            values = (self.moving_mean, self.moving_variance) + values[2:]
        return values

    def call(self, x, training=None):
        return batch_norm_apply(x, self.params(), self.affine, bool(training))

    def get_config(self):
        config = super().get_config()
        config.update(affine=self.affine)
        return config


def _bn_params(params, affine):
    n = 4 if affine else 2
    return params[:n], params[n:]


def _relu_conv_bn(spec, x, params, training):
    _, kernel_size, stride, affine = spec
    pad = (kernel_size - 1) // 2
    x = tf.nn.conv2d(_pad(tf.nn.relu(x), pad, pad), params[0], stride, "VALID")
    return batch_norm_apply(x, params[1:], affine, training)


def _factorized_conv_bn(spec, x, params, training):
    _, kernel_size, stride, affine = spec
    pad = (kernel_size - 1) // 2
    x = tf.nn.conv2d(_pad(tf.nn.relu(x), 0, pad), params[0], [1, stride], "VALID")
    x = tf.nn.conv2d(_pad(x, pad, 0), params[1], [stride, 1], "VALID")
    return batch_norm_apply(x, params[2:], affine, training)


def _dil_conv(spec, x, params, training):
    _, kernel_size, stride, affine, dilation = spec
    x = _depthwise(tf.nn.relu(x), params[0], stride, dilation)
    x = tf.nn.conv2d(x, params[1], 1, "VALID")
    return batch_norm_apply(x, params[2:], affine, training)


def _sep_conv(spec, x, params, training):
    _, kernel_size, stride, affine = spec
    bn1, rest = _bn_params(params[2:], affine)
    x = _depthwise(tf.nn.relu(x), params[0], stride, 1)
    x = batch_norm_apply(tf.nn.conv2d(x, params[1], 1, "VALID"), bn1, affine, training)
    x = _depthwise(tf.nn.relu(x), rest[0], 1, 1)
    return batch_norm_apply(tf.nn.conv2d(x, rest[1], 1, "VALID"), rest[2:], affine, training)


def _factorized_reduce(spec, x, params, training):
    _, affine = spec
    x = tf.nn.relu(x)
    a = tf.nn.conv2d(x, params[0], 2, "VALID")
    b = tf.nn.conv2d(x[:, 1:, 1:, :], params[1], 2, "VALID")
    return batch_norm_apply(tf.concat([a, b], axis=-1), params[2:], affine, training)


def _identity(spec, x, params, training):
    return x


def _zero(spec, x, params, training):
    stride = spec[1]
    if stride > 1:
        x = x[:, ::stride, ::stride, :]
    return tf.zeros_like(x)


def avg_pool_divisor(height, width, pool_size, stride):
    """Real (unpadded) cells under each window: a constant [1, H', W', 1]."""
    p = (pool_size - 1) // 2
    ones = np.pad(np.ones((height, width), np.float32), p)
    out_h, out_w = (height + 2 * p - pool_size) // stride + 1, (width + 2 * p - pool_size) // stride + 1
    div = np.empty((out_h, out_w), np.float32)
    for i in range(out_h):
        for j in range(out_w):
            div[i, j] = ones[i * stride:i * stride + pool_size, j * stride:j * stride + pool_size].sum()
    return div[None, :, :, None]


def _pool(spec, x, params, training):
    _, kind, k, s, bn_after = spec
    p = (k - 1) // 2
    if kind == "max":
        y = tf.nn.max_pool2d(_pad(x, p, p, float("-inf")), k, s, "VALID")
    elif s == 1:
        # TF's SAME average pooling is symmetric for stride 1 and odd k and
        # already leaves the padding out of the count.
        y = tf.nn.avg_pool2d(x, k, 1, "SAME")
    else:
        summed = tf.nn.avg_pool2d(_pad(x, p, p), k, s, "VALID") * float(k * k)
        y = summed / avg_pool_divisor(x.shape[1], x.shape[2], k, s)
    if bn_after:
        y = batch_norm_apply(y, params, False, training)
    return y


_APPLY = {
    "relu_conv_bn": _relu_conv_bn, "factorized_conv_bn": _factorized_conv_bn,
    "dil_conv": _dil_conv, "sep_conv": _sep_conv, "factorized_reduce": _factorized_reduce,
    "identity": _identity, "zero": _zero, "pool": _pool,
}


def apply_op(spec, x, params, training):
    """Runs the op described by `spec` on `x` with weights `params`."""
    return _APPLY[spec[0]](spec, x, params, training)


class Op(keras.layers.Layer):
    """Base of the candidate operations: channels, stride and affine config.

    Subclasses create their weights in `build`, list them in `params()` (the
    order `apply_op` expects) and describe themselves by a hashable `spec`.

    Args:
      channels: output channels (ops other than preprocessing keep the count).
      stride: 1 or 2.
      affine: whether batch norms have a learnable scale and shift (False
        while searching, True in evaluation networks).
    """

    def __init__(self, channels, stride=1, affine=True, **kwargs):
        super().__init__(**kwargs)
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2. Received: stride={stride}")
        if channels < 1:
            raise ValueError(f"channels must be positive. Received: channels={channels}")
        self.channels = int(channels)
        self.stride = int(stride)
        self.affine = bool(affine)

    # The names of the op's convolution kernels, in the order `params` takes them.
    kernel_names = ()

    @property
    def spec(self):
        raise NotImplementedError

    def kernel_specs(self):
        """(name, shape, fan_in) of each kernel, in `kernel_names` order. Shapes
        follow from the constructor's arguments alone, so a supernet can
        create its kernels for many ops at once (`bind_kernel`)."""
        return ()

    def kernels(self):
        """The kernels' current values, in `kernel_names` order."""
        return ()

    def params(self, kernels=None):
        """Everything `apply_op` takes besides the input: `kernels` (default
        `self.kernels()`) and the batch-norm variables."""
        return ()

    def compute_output_shape(self, input_shape):
        h, w = input_shape[1], input_shape[2]
        if self.stride == 2:
            h = None if h is None else (h - 1) // 2 + 1
            w = None if w is None else (w - 1) // 2 + 1
        return (input_shape[0], h, w, self.channels)

    def call(self, x, training=None):
        return apply_op(self.spec, x, self.params(), bool(training))

    def get_config(self):
        config = super().get_config()
        config.update(channels=self.channels, stride=self.stride, affine=self.affine)
        return config


class _ConvOp(Op):
    """An op made of convolution kernels and batch norms.

    A kernel is the op's own variable, or (`bind_kernel`, before `build`) a
    row of a stacked variable that another layer owns: the search network
    keeps one variable per (cell, op, kernel) for all the cell's edges.
    """

    bn_names = ("bn",)

    def __init__(self, channels, stride=1, affine=True, **kwargs):
        super().__init__(channels, stride, affine, **kwargs)
        for name in self.bn_names:
            setattr(self, name, BatchNorm(affine, name=name))
        self.kernel_rows = {}

    def bind_kernel(self, name, stacked, row):
        """Kernel `name` becomes `stacked[row]`: `stacked` is a variable
        [rows, *shape] created by another layer. The op lists `stacked` among
        its weights (so gradients and counts reach it) but does not own it."""
        if self.built:
            raise ValueError(f"bind_kernel must come before build. Received: {self.name} "
                             "already built")
        if name not in self.kernel_names:
            raise ValueError(f"Unknown kernel. Received: name={name!r}; "
                             f"kernels: {self.kernel_names}")
        setattr(self, name, stacked)
        self.kernel_rows[name] = int(row)

    def build(self, input_shape):
        for name, shape, fan_in in self.kernel_specs():
            if name not in self.kernel_rows:
                setattr(self, name, self.add_weight(name=name, shape=shape,
                                                    initializer=torch_uniform(fan_in)))
        out_shape = self.compute_output_shape(input_shape)
        for name in self.bn_names:
            getattr(self, name).build(out_shape)

    def kernels(self):
        values = []
        for name in self.kernel_names:
            value = getattr(self, name).value
            row = self.kernel_rows.get(name)
            values.append(value if row is None else value[row])
        return tuple(values)

    def params(self, kernels=None):
        kernels = self.kernels() if kernels is None else tuple(kernels)
        return kernels + sum((getattr(self, n).params() for n in self.bn_names), ())


class ReLUConvBN(_ConvOp):
    """ReLU, a k x k convolution (no bias), then batch norm (`conv 1x1`, `conv 3x3`).

    Also the 1x1 preprocessing of cell inputs, where `in_channels` differs from
    `channels`. Reference: Liu et al., "DARTS", ICLR 2019, operations.py.

    Args:
      channels: output channels.
      kernel_size: odd kernel size; padding is (k - 1) / 2 on every side.
      stride: 1 or 2.
      affine: learnable batch-norm scale and shift.
      in_channels: input channels, default `channels`.
    """

    kernel_names = ("kernel",)

    def __init__(self, channels, kernel_size=1, stride=1, affine=True, in_channels=None,
                 **kwargs):
        super().__init__(channels, stride, affine, **kwargs)
        self.kernel_size = int(kernel_size)
        self.in_channels = int(in_channels or channels)

    def kernel_specs(self):
        k, cin = self.kernel_size, self.in_channels
        return (("kernel", (k, k, cin, self.channels), cin * k * k),)

    @property
    def spec(self):
        return ("relu_conv_bn", self.kernel_size, self.stride, self.affine)

    def get_config(self):
        config = super().get_config()
        config.update(kernel_size=self.kernel_size, in_channels=self.in_channels)
        return config


class FactorizedConvBN(_ConvOp):
    """ReLU, a 1 x k then a k x 1 convolution (no BN between), batch norm.

    NASP's `conv_3x1_1x3` (k=3) and `conv_7x1_1x7` (k=7): despite the names the
    1 x k convolution runs first, with stride (1, s), then the k x 1 one with
    stride (s, 1). Reference: Yao et al., "NASP", AAAI 2020, operations.py.

    Args:
      channels: channels in and out.
      kernel_size: k.
      stride: 1 or 2.
      affine: learnable batch-norm scale and shift.
    """

    kernel_names = ("kernel_1xk", "kernel_kx1")

    def __init__(self, channels, kernel_size=3, stride=1, affine=True, **kwargs):
        super().__init__(channels, stride, affine, **kwargs)
        self.kernel_size = int(kernel_size)

    def kernel_specs(self):
        k, c = self.kernel_size, self.channels
        return (("kernel_1xk", (1, k, c, c), c * k), ("kernel_kx1", (k, 1, c, c), c * k))

    @property
    def spec(self):
        return ("factorized_conv_bn", self.kernel_size, self.stride, self.affine)

    def get_config(self):
        config = super().get_config()
        config.update(kernel_size=self.kernel_size)
        return config


class DilConv(_ConvOp):
    """ReLU, a dilated depthwise k x k conv, a pointwise 1x1 conv, batch norm.

    `dil_conv_3x3` (k=3, dilation 2) and `dil_conv_5x5` (k=5, dilation 2).
    Reference: Liu et al., "DARTS", ICLR 2019.

    Args:
      channels: channels in and out.
      kernel_size: k.
      stride: 1 or 2.
      affine: learnable batch-norm scale and shift.
      dilation: dilation rate of the depthwise convolution.
    """

    kernel_names = ("depthwise", "pointwise")

    def __init__(self, channels, kernel_size=3, stride=1, affine=True, dilation=2, **kwargs):
        super().__init__(channels, stride, affine, **kwargs)
        self.kernel_size = int(kernel_size)
        self.dilation = int(dilation)

    def kernel_specs(self):
        k, c = self.kernel_size, self.channels
        return (("depthwise", (k, k, c, 1), k * k), ("pointwise", (1, 1, c, c), c))

    @property
    def spec(self):
        return ("dil_conv", self.kernel_size, self.stride, self.affine, self.dilation)

    def get_config(self):
        config = super().get_config()
        config.update(kernel_size=self.kernel_size, dilation=self.dilation)
        return config


class SepConv(_ConvOp):
    """Two stacked (ReLU, depthwise k x k, pointwise 1x1, BN) blocks.

    Only the first depthwise conv is strided. `sep_conv_KxK` in DARTS and
    `sep_KxK` in NASP. Reference: Liu et al., "DARTS", ICLR 2019.

    Args:
      channels: channels in and out.
      kernel_size: k (3, 5 or 7).
      stride: 1 or 2.
      affine: learnable batch-norm scale and shift.
    """

    kernel_names = ("depthwise1", "pointwise1", "depthwise2", "pointwise2")
    bn_names = ("bn1", "bn2")

    def __init__(self, channels, kernel_size=3, stride=1, affine=True, **kwargs):
        super().__init__(channels, stride, affine, **kwargs)
        self.kernel_size = int(kernel_size)

    def kernel_specs(self):
        k, c = self.kernel_size, self.channels
        return (("depthwise1", (k, k, c, 1), k * k), ("pointwise1", (1, 1, c, c), c),
                ("depthwise2", (k, k, c, 1), k * k), ("pointwise2", (1, 1, c, c), c))

    def params(self, kernels=None):
        # (dw1, pw1, bn1..., dw2, pw2, bn2...), the order `_sep_conv` reads.
        dw1, pw1, dw2, pw2 = self.kernels() if kernels is None else kernels
        return (dw1, pw1) + self.bn1.params() + (dw2, pw2) + self.bn2.params()

    @property
    def spec(self):
        return ("sep_conv", self.kernel_size, self.stride, self.affine)

    def get_config(self):
        config = super().get_config()
        config.update(kernel_size=self.kernel_size)
        return config


class FactorizedReduce(_ConvOp):
    """Halves H and W: ReLU, two stride-2 1x1 convs on x and on x shifted by one pixel.

    The second branch sees `x[:, 1:, 1:, :]` (the odd positions); their outputs
    are concatenated on channels, then batch norm. The stride-2
    `skip_connect`, and the preprocessing after a reduction cell.
    Reference: Liu et al., "DARTS", ICLR 2019.

    Args:
      channels: output channels (even).
      affine: learnable batch-norm scale and shift.
      in_channels: input channels, default `channels`.
    """

    kernel_names = ("kernel_a", "kernel_b")

    def __init__(self, channels, affine=True, in_channels=None, **kwargs):
        kwargs.pop("stride", None)
        super().__init__(channels, 2, affine, **kwargs)
        if channels % 2:
            raise ValueError("FactorizedReduce needs an even channel count. "
                             f"Received: channels={channels}")
        self.in_channels = int(in_channels or channels)

    def kernel_specs(self):
        half, cin = self.channels // 2, self.in_channels
        return (("kernel_a", (1, 1, cin, half), cin), ("kernel_b", (1, 1, cin, half), cin))

    @property
    def spec(self):
        return ("factorized_reduce", self.affine)

    def get_config(self):
        config = super().get_config()
        config.pop("stride")
        config.update(in_channels=self.in_channels)
        return config


class Identity(Op):
    """Returns its input (stride-1 `skip_connect`).

    Args:
      channels: channels in and out.
    """

    @property
    def spec(self):
        return ("identity",)


class Zero(Op):
    """DARTS's `none`: zeros, subsampled by the stride.

    Args:
      channels: channels in and out.
      stride: 1 or 2.
    """

    @property
    def spec(self):
        return ("zero", self.stride)


class Pool(Op):
    """k x k max or average pooling with PyTorch padding (k-1)/2.

    Max pooling pads with -inf; average pooling does not count padded cells
    (count_include_pad=False). In the search network every pool is followed
    by a batch norm without affine (`bn_after=True`), as in the reference.

    Args:
      channels: channels in and out.
      kind: "max" or "avg".
      pool_size: odd window size.
      stride: 1 or 2.
      bn_after: add the batch norm after the pool.
    """

    def __init__(self, channels, kind="max", pool_size=3, stride=1, bn_after=False, **kwargs):
        kwargs.pop("affine", None)
        super().__init__(channels, stride, False, **kwargs)
        if kind not in ("max", "avg"):
            raise ValueError(f"kind must be 'max' or 'avg'. Received: kind={kind!r}")
        self.kind = kind
        self.pool_size = int(pool_size)
        self.bn_after = bool(bn_after)
        self.bn = BatchNorm(False, name="bn") if bn_after else None

    def build(self, input_shape):
        if self.bn is not None:
            self.bn.build(self.compute_output_shape(input_shape))

    def params(self, kernels=None):
        return self.bn.params() if self.bn is not None else ()

    @property
    def spec(self):
        return ("pool", self.kind, self.pool_size, self.stride, self.bn_after)

    def get_config(self):
        config = super().get_config()
        config.update(kind=self.kind, pool_size=self.pool_size, bn_after=self.bn_after)
        return config


def _skip(channels, stride, affine, name):
    if stride == 1:
        return Identity(channels, name=name)
    return FactorizedReduce(channels, affine=affine, name=name)


# name -> builder(channels, stride, affine, name, search). `search` adds the
# reference's batch norm after pools in the search network.
OPS = {
    "none": lambda c, s, a, n, search: Zero(c, s, name=n),
    "skip_connect": lambda c, s, a, n, search: _skip(c, s, a, n),
    "max_pool_3x3": lambda c, s, a, n, search: Pool(c, "max", 3, s, search, name=n),
    "max_pool_5x5": lambda c, s, a, n, search: Pool(c, "max", 5, s, search, name=n),
    "max_pool_7x7": lambda c, s, a, n, search: Pool(c, "max", 7, s, search, name=n),
    "avg_pool_3x3": lambda c, s, a, n, search: Pool(c, "avg", 3, s, search, name=n),
    "conv 1x1": lambda c, s, a, n, search: ReLUConvBN(c, 1, s, a, name=n),
    "conv 3x3": lambda c, s, a, n, search: ReLUConvBN(c, 3, s, a, name=n),
    "conv_3x1_1x3": lambda c, s, a, n, search: FactorizedConvBN(c, 3, s, a, name=n),
    "conv_7x1_1x7": lambda c, s, a, n, search: FactorizedConvBN(c, 7, s, a, name=n),
    "dil_conv_3x3": lambda c, s, a, n, search: DilConv(c, 3, s, a, dilation=2, name=n),
    "dil_conv_5x5": lambda c, s, a, n, search: DilConv(c, 5, s, a, dilation=2, name=n),
    "sep_conv_3x3": lambda c, s, a, n, search: SepConv(c, 3, s, a, name=n),
    "sep_conv_5x5": lambda c, s, a, n, search: SepConv(c, 5, s, a, name=n),
    "sep_conv_7x7": lambda c, s, a, n, search: SepConv(c, 7, s, a, name=n),
    # NASP's names for the same separable convolutions.
    "sep_3x3": lambda c, s, a, n, search: SepConv(c, 3, s, a, name=n),
    "sep_5x5": lambda c, s, a, n, search: SepConv(c, 5, s, a, name=n),
    "sep_7x7": lambda c, s, a, n, search: SepConv(c, 7, s, a, name=n),
}


def cell_preprocess(channels, prev_prev_channels, prev_channels, reduction_prev, affine):
    """The two input ops of a cell: input k-2 is factor-reduced when the previous
    cell was a reduction cell (it is then twice as large), else a 1x1 ReLUConvBN;
    input k-1 always gets a 1x1 ReLUConvBN."""
    if reduction_prev:
        pre0 = FactorizedReduce(channels, affine=affine, in_channels=prev_prev_channels,
                                name="preprocess0")
    else:
        pre0 = ReLUConvBN(channels, 1, 1, affine, in_channels=prev_prev_channels,
                          name="preprocess0")
    pre1 = ReLUConvBN(channels, 1, 1, affine, in_channels=prev_channels, name="preprocess1")
    return pre0, pre1


def layer_name(op_name):
    """A Keras-safe layer name for an op (NASP's names contain spaces)."""
    return op_name.replace(" ", "_")


def build_op(op_name, channels, stride, affine, search=False, name=None):
    """Builds candidate op `op_name` as a Keras layer.

    Args:
      op_name: a key of `OPS`.
      channels: channels in and out.
      stride: 1 or 2.
      affine: learnable batch-norm parameters.
      search: add the search network's batch norm after pools.
      name: layer name, default derived from `op_name`.
    """
    if op_name not in OPS:
        raise ValueError(f"Unknown operation. Received: op_name={op_name!r}; "
                         f"known: {sorted(OPS)}")
    return OPS[op_name](channels, stride, affine, name or layer_name(op_name), search)
