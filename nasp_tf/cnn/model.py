"""Final (evaluation) networks built from a genotype: NetworkCIFAR, NetworkImageNet.

Eval cells use affine batch norms, run each node's two chosen ops and apply
drop path to every op but the identity (docs/reference.md §5). The auxiliary head
sits on the output of cell 2*layers//3 (the second reduction cell) and only
runs in training.
"""

import keras
import tensorflow as tf

from nasp_tf import counting
from nasp_tf import genotype as genotype_lib
from nasp_tf.cnn import ops as ops_lib


class DropPath(keras.layers.Layer):
    """Drops whole samples of a branch with probability p and rescales by 1/(1-p).

    The probability lives in a variable so that a schedule can change it
    between epochs without retracing. The masks come from the layer's own
    seed generator, whose state is checkpointed: a resumed run draws the
    masks an uninterrupted one draws.

    Args:
      probability: a scalar `keras.Variable` shared by the network's drop paths.
      seed: seed of the masks (None: drawn from Keras's global seed).
    Reference: Larsson et al., "FractalNet", ICLR 2017; DARTS utils.drop_path.
    """

    def __init__(self, probability, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.probability = probability
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x, training=None):
        if not training:
            return x
        keep = 1.0 - tf.convert_to_tensor(self.probability)
        mask = tf.floor(keep + keras.random.uniform([tf.shape(x)[0], 1, 1, 1], dtype=x.dtype,
                                                    seed=self.seed_generator))
        return tf.where(keep < 1.0, x / keep * mask, x)


class EvalCell(keras.layers.Layer):
    """A cell of a final network, built from one cell of a genotype.

    Args:
      pairs: ((op, input), ...), two per node.
      concat: states concatenated into the output.
      channels: node channels C.
      prev_prev_channels, prev_channels: channels of the inputs k-2 and k-1.
      reduction: stride 2 on the edges from the cell inputs.
      reduction_prev: input k-2 is twice as large as input k-1.
      drop_probability: the network's drop-path probability variable.
    Reference: Liu et al., "DARTS", ICLR 2019, model.py.
    """

    def __init__(self, pairs, concat, channels, prev_prev_channels, prev_channels,
                 reduction, reduction_prev, drop_probability, **kwargs):
        super().__init__(**kwargs)
        self.pairs = tuple(tuple(p) for p in pairs)
        self.concat = tuple(concat)
        self.channels = channels
        self.reduction = reduction
        self.preprocess0, self.preprocess1 = ops_lib.cell_preprocess(
            channels, prev_prev_channels, prev_channels, reduction_prev, affine=True)
        self.cell_ops, self.drops = [], []
        for i, (op_name, inp) in enumerate(self.pairs):
            stride = 2 if reduction and inp < 2 else 1
            op = ops_lib.build_op(op_name, channels, stride, affine=True,
                                  name=f"op_{i}_{ops_lib.layer_name(op_name)}")
            self.cell_ops.append(op)
            # The identity is never dropped (a stride-2 skip is a real op).
            self.drops.append(None if isinstance(op, ops_lib.Identity)
                              else DropPath(drop_probability, name=f"drop_{i}"))

    def build(self, s0_shape, s1_shape):
        self.preprocess0.build(s0_shape)
        self.preprocess1.build(s1_shape)
        state = self.preprocess1.compute_output_shape(s1_shape)
        reduced = (state[0], (state[1] - 1) // 2 + 1, (state[2] - 1) // 2 + 1, state[3]) \
            if self.reduction else state
        for op, (_, inp) in zip(self.cell_ops, self.pairs):
            op.build(state if inp < 2 else reduced)

    def compute_output_shape(self, s0_shape, s1_shape):
        h, w = s1_shape[1], s1_shape[2]
        if self.reduction:
            h, w = (h - 1) // 2 + 1, (w - 1) // 2 + 1
        return (s1_shape[0], h, w, len(self.concat) * self.channels)

    def call(self, s0, s1, training=None):
        states = [self.preprocess0(s0, training=training),
                  self.preprocess1(s1, training=training)]
        for node in range(len(self.pairs) // 2):
            total = 0.0
            for i in (2 * node, 2 * node + 1):
                h = self.cell_ops[i](states[self.pairs[i][1]], training=training)
                if self.drops[i] is not None:
                    h = self.drops[i](h, training=training)
                total = total + h
            states.append(total)
        return tf.concat([states[i] for i in self.concat], axis=-1)


class _AuxiliaryHead(keras.layers.Layer):
    """ReLU, 5x5 average pool (no padding), 1x1 conv to 128, BN, ReLU, 2x2 conv to 768
    [, BN], ReLU, linear. Reference: Szegedy et al., "Going deeper with convolutions";
    DARTS model.py.

    Args:
      in_channels: channels of the cell output it reads.
      num_classes: classifier outputs.
      pool_stride: 3 for CIFAR (8x8 input), 2 for ImageNet (7x7 input).
      second_bn: the BN after the 768-channel conv (CIFAR only).
    """

    def __init__(self, in_channels, num_classes, pool_stride, second_bn, **kwargs):
        super().__init__(**kwargs)
        self.in_channels = in_channels
        self.pool_stride = pool_stride
        self.bn1 = ops_lib.BatchNorm(True, name="bn1")
        self.bn2 = ops_lib.BatchNorm(True, name="bn2") if second_bn else None
        self.classifier = keras.layers.Dense(
            num_classes, kernel_initializer=ops_lib.torch_uniform(768),
            bias_initializer=ops_lib.torch_uniform(768), dtype=ops_lib.LOGITS_DTYPE,
            name="classifier")

    def build(self, input_shape):
        self.kernel1 = self.add_weight(name="kernel1", shape=(1, 1, self.in_channels, 128),
                                       initializer=ops_lib.torch_uniform(self.in_channels))
        self.kernel2 = self.add_weight(name="kernel2", shape=(2, 2, 128, 768),
                                       initializer=ops_lib.torch_uniform(128 * 4))
        self.bn1.build((None, None, None, 128))
        if self.bn2 is not None:
            self.bn2.build((None, None, None, 768))
        self.classifier.build((None, 768))

    def call(self, x, training=None):
        x = tf.nn.avg_pool2d(tf.nn.relu(x), 5, self.pool_stride, "VALID")
        x = tf.nn.relu(self.bn1(tf.nn.conv2d(x, self.kernel1, 1, "VALID"), training=training))
        x = tf.nn.conv2d(x, self.kernel2, 1, "VALID")
        if self.bn2 is not None:
            x = self.bn2(x, training=training)
        x = tf.nn.relu(x)
        return self.classifier(tf.reshape(x, [tf.shape(x)[0], -1]))


class _StemConv(keras.layers.Layer):
    """[ReLU,] 3x3 conv with PyTorch padding 1, then an affine BN [, ReLU].

    Args:
      in_channels, channels: channels in and out.
      stride: 1 or 2.
      relu_before, relu_after: ReLUs around the conv-BN pair.
    """

    def __init__(self, in_channels, channels, stride, relu_before=False, relu_after=False,
                 **kwargs):
        super().__init__(**kwargs)
        self.in_channels, self.channels, self.stride = in_channels, channels, stride
        self.relu_before, self.relu_after = relu_before, relu_after
        self.bn = ops_lib.BatchNorm(True, name="bn")

    def build(self, input_shape):
        self.kernel = self.add_weight(
            name="kernel", shape=(3, 3, self.in_channels, self.channels),
            initializer=ops_lib.torch_uniform(9 * self.in_channels))
        self.bn.build((None, None, None, self.channels))

    def compute_output_shape(self, input_shape):
        h, w = input_shape[1], input_shape[2]
        if self.stride == 2:
            h, w = (h - 1) // 2 + 1, (w - 1) // 2 + 1
        return (input_shape[0], h, w, self.channels)

    def call(self, x, training=None):
        if self.relu_before:
            x = tf.nn.relu(x)
        x = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])
        x = self.bn(tf.nn.conv2d(x, self.kernel, self.stride, "VALID"), training=training)
        return tf.nn.relu(x) if self.relu_after else x


@keras.saving.register_keras_serializable(package="nasp_tf")
class FinalNetwork(keras.Model):
    """A final network built from a CNN genotype (NetworkCIFAR or NetworkImageNet).

    `call` returns logits; `forward` returns (logits, auxiliary logits or None).
    The auxiliary head runs only in training; drop path only in training, with
    the probability held in `drop_path_probability` (set per epoch).

    Args:
      genotype: a `genotype.CNNGenotype`, or its JSON dict.
      num_classes: classifier outputs.
      channels: initial channels C.
      layers: cells; reductions at layers//3 and 2*layers//3.
      auxiliary: build the auxiliary head on cell 2*layers//3.
      image_shape: (H, W, 3) of the inputs.
      stem: "cifar" (3x3 conv to 3C) or "imagenet" (three stride-2 convs).
    Reference: Liu et al., "DARTS", ICLR 2019, model.py; Yao et al., "NASP", AAAI 2020.
    """

    def __init__(self, genotype, num_classes=10, channels=36, layers=20, auxiliary=False,
                 image_shape=(32, 32, 3), stem="cifar", **kwargs):
        super().__init__(**kwargs)
        if isinstance(genotype, dict):
            genotype = genotype_lib.cnn_genotype_from_json(genotype)
        if stem not in ("cifar", "imagenet"):
            raise ValueError(f"stem must be 'cifar' or 'imagenet'. Received: stem={stem!r}")
        if layers < 3 or channels < 2 or num_classes < 1:
            raise ValueError("layers must be >= 3, channels >= 2, num_classes >= 1. Received: "
                             f"layers={layers}, channels={channels}, num_classes={num_classes}")
        self.genotype = genotype
        self.num_classes, self.channels, self.num_cells = num_classes, channels, layers
        self.auxiliary, self.image_shape, self.stem = auxiliary, tuple(image_shape), stem
        self.drop_path_probability = keras.Variable(0.0, trainable=False,
                                                    name="drop_path_probability")
        in_channels = image_shape[-1]
        if stem == "cifar":
            self.stems = [_StemConv(in_channels, 3 * channels, 1, name="stem")]
            c_pp = c_p = 3 * channels
            reduction_prev = False
        else:
            self.stems = [
                _StemConv(in_channels, channels // 2, 2, relu_after=True, name="stem0_a"),
                _StemConv(channels // 2, channels, 2, name="stem0_b"),
                _StemConv(channels, channels, 2, relu_before=True, name="stem1")]
            c_pp = c_p = channels
            reduction_prev = True
        self.aux_cell = 2 * layers // 3
        self.cells, self.aux_head = [], None
        c_curr = channels
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                c_curr *= 2
            pairs, concat = genotype.cell("reduce" if reduction else "normal")
            self.cells.append(EvalCell(pairs, concat, c_curr, c_pp, c_p, reduction,
                                       reduction_prev, self.drop_path_probability,
                                       name=f"cell_{i}"))
            reduction_prev = reduction
            c_pp, c_p = c_p, len(concat) * c_curr
            if auxiliary and i == self.aux_cell:
                self.aux_head = _AuxiliaryHead(c_p, num_classes, 3 if stem == "cifar" else 2,
                                               second_bn=stem == "cifar", name="aux_head")
        self.classifier = keras.layers.Dense(
            num_classes, kernel_initializer=ops_lib.torch_uniform(c_p),
            bias_initializer=ops_lib.torch_uniform(c_p), dtype=ops_lib.LOGITS_DTYPE,
            name="classifier")
        self._build_all((None,) + self.image_shape)

    def _build_all(self, input_shape):
        shape = input_shape
        for stem in self.stems:
            stem.build(shape)
            shape = stem.compute_output_shape(shape)
        if self.stem == "cifar":
            s0 = s1 = shape
        else:
            s0, s1 = self.stems[1].compute_output_shape(
                self.stems[0].compute_output_shape(input_shape)), shape
        for i, cell in enumerate(self.cells):
            cell.build(s0, s1)
            s0, s1 = s1, cell.compute_output_shape(s0, s1)
            if self.aux_head is not None and i == self.aux_cell:
                self.aux_head.build(s1)
        self.classifier.build((None, s1[-1]))
        self.built = True

    def count_params_without_auxiliary(self):
        """Learnable parameters, auxiliary head excluded (as the papers count them)."""
        layers = self.stems + self.cells + [self.classifier]
        return counting.parameter_count(*layers)

    def forward(self, images, training=False):
        if self.stem == "cifar":
            s0 = s1 = self.stems[0](images, training=training)
        else:
            s0 = self.stems[1](self.stems[0](images, training=training), training=training)
            s1 = self.stems[2](s0, training=training)
        aux_logits = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, training=training)
            if training and self.aux_head is not None and i == self.aux_cell:
                aux_logits = self.aux_head(s1, training=training)
        return self.classifier(tf.reduce_mean(s1, axis=[1, 2])), aux_logits

    def call(self, images, training=False):
        return self.forward(images, training=training)[0]

    def get_config(self):
        return {"genotype": self.genotype.to_json(), "num_classes": self.num_classes,
                "channels": self.channels, "layers": self.num_cells,
                "auxiliary": self.auxiliary, "image_shape": list(self.image_shape),
                "stem": self.stem, "name": self.name}


def network_cifar(genotype, num_classes=10, channels=36, layers=20, auxiliary=True,
                  image_shape=(32, 32, 3), **kwargs):
    return FinalNetwork(genotype, num_classes, channels, layers, auxiliary, image_shape,
                        "cifar", **kwargs)


def network_imagenet(genotype, num_classes=1000, channels=48, layers=14, auxiliary=True,
                     image_shape=(224, 224, 3), **kwargs):
    return FinalNetwork(genotype, num_classes, channels, layers, auxiliary, image_shape,
                        "imagenet", **kwargs)
