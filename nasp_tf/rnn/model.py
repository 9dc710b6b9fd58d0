"""The recurrent eval cell of a genotype and the DARTS/NASP language model.

docs/reference.md §6.1 (cell) and §6.3 (model). Sequences are batch-major,
[batch, time]; the cells loop over time with `tf.scan`, so one trace serves
every BPTT length.
"""

import keras
import tensorflow as tf

INIT_RANGE = 0.04
# One time step of a cell's loop in flight at a time. With tf.scan's default
# (10), identical runs on CPU ended in different last bits of the weights in
# about half of the runs (`--deterministic` or not), and a 1-epoch PTB
# retraining's perplexity moved by 0.2 %; each step depends on the previous
# hidden state, so nothing ran in parallel anyway.
SCAN_ITERATIONS = 1
ACTIVATIONS = {
    "tanh": tf.tanh,
    "relu": tf.nn.relu,
    "sigmoid": tf.sigmoid,
    "identity": tf.identity,
}


def uniform_init():
    return keras.initializers.RandomUniform(-INIT_RANGE, INIT_RANGE)


def variational_mask(shape, rate, seed_generator, dtype="float32"):
    """A 0 or 1/(1 - rate) mask, sampled once (per sequence, not per step)."""
    if rate <= 0:
        return tf.ones(shape, dtype)
    keep = 1.0 - rate
    draw = keras.random.uniform(shape, seed=seed_generator, dtype=dtype)
    return tf.cast(draw < keep, dtype) / keep


def initial_state(x, h, x_mask, h_mask, w0):
    """s0 = h + sigmoid(c0) * (tanh(h0) - h), [c0 | h0] = [x m_x, h m_h] W0.

    The gate mixes with the unmasked h, as the reference does.
    """
    xh = tf.concat([x * x_mask, h * h_mask], axis=-1)
    c0, h0 = tf.split(tf.matmul(xh, w0), 2, axis=-1)
    return h + tf.sigmoid(c0) * (tf.tanh(h0) - h)


def highway(s_prev, ch, activation):
    """s_prev + sigmoid(c) * (act(g) - s_prev) for [c | g] = ch."""
    c, g = tf.split(ch, 2, axis=-1)
    return s_prev + tf.sigmoid(c) * (ACTIVATIONS[activation](g) - s_prev)


class RecurrentCellBase(keras.layers.Layer):
    """Weights and masks shared by the eval and the search cells.

    W0 is (ninp + nhid) x 2 nhid, each node's W_i is nhid x 2 nhid, no biases,
    uniform(-0.04, 0.04) (docs/reference.md §6.1).

    Args:
      units: nhid (= ninp, the embedding size).
      steps: intermediate nodes.
      dropoutx: variational dropout of the input x.
      dropouth: variational dropout of the hidden state on every node's input.
    Reference: Liu et al., "DARTS", ICLR 2019, rnn/model.py.
    """

    def __init__(self, units, steps=8, dropoutx=0.0, dropouth=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        if units < 1 or steps < 1:
            raise ValueError(f"units and steps must be positive. Received: units={units}, "
                             f"steps={steps}")
        for name, rate in (("dropoutx", dropoutx), ("dropouth", dropouth)):
            if not 0.0 <= rate < 1.0:
                raise ValueError(f"{name} must be in [0, 1). Received: {name}={rate}")
        self.units = int(units)
        self.state_size = int(units)
        self.steps = int(steps)
        self.dropoutx = float(dropoutx)
        self.dropouth = float(dropouth)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed, name="mask_seed")
        self.w0 = self.add_weight(name="w0", shape=(2 * units, 2 * units),
                                  initializer=uniform_init())
        self.node_kernels = [
            self.add_weight(name=f"w_{i + 1}", shape=(units, 2 * units),
                            initializer=uniform_init())
            for i in range(self.steps)]
        # Every weight exists now: nothing is left to build from data.
        self.built = True

    def masks(self, batch, training):
        dtype = self.compute_dtype
        if not training:
            ones = tf.ones(tf.stack([batch, self.units]), dtype)
            return ones, ones
        shape = tf.stack([batch, self.units])
        return (variational_mask(shape, self.dropoutx, self.seed_generator, dtype),
                variational_mask(shape, self.dropouth, self.seed_generator, dtype))

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units, steps=self.steps, dropoutx=self.dropoutx,
                      dropouth=self.dropouth, seed=self.seed)
        return config


@keras.saving.register_keras_serializable(package="nasp_tf")
class DARTSCell(RecurrentCellBase):
    """The recurrent cell of a genotype (DARTS's eval `DARTSCell`).

    Node i+1 = highway of its genotype predecessor under its activation; the
    output h_t is the mean of the `concat` states.

    Args:
      units: nhid = ninp.
      recurrent: ((activation, predecessor), ...), one pair per node.
      concat: states averaged into h_t (1..steps).
      dropoutx, dropouth: variational dropouts (training only).
    Reference: Liu et al., "DARTS", ICLR 2019, rnn/model.py; docs/reference.md §6.1.
    """

    def __init__(self, units, recurrent, concat, dropoutx=0.0, dropouth=0.0, seed=None,
                 **kwargs):
        recurrent = tuple((str(a), int(p)) for a, p in recurrent)
        super().__init__(units, len(recurrent), dropoutx, dropouth, seed, **kwargs)
        for i, (act, pred) in enumerate(recurrent):
            if act not in ACTIVATIONS or not 0 <= pred <= i:
                raise ValueError(f"node {i + 1} needs an activation in {sorted(ACTIVATIONS)} "
                                 f"and a predecessor in 0..{i}. Received: {(act, pred)}")
        self.recurrent = recurrent
        self.concat = tuple(int(c) for c in concat)

    def step(self, x, h, x_mask, h_mask):
        states = [initial_state(x, h, x_mask, h_mask, self.w0)]
        for i, (act, pred) in enumerate(self.recurrent):
            s_prev = states[pred]
            states.append(highway(s_prev, tf.matmul(s_prev * h_mask, self.node_kernels[i]), act))
        return tf.add_n([states[c] for c in self.concat]) / len(self.concat)

    def call(self, inputs, hidden, training=None):
        """inputs [batch, time, units], hidden [batch, units] -> (outputs
        [batch, time, units], last hidden)."""
        x_mask, h_mask = self.masks(tf.shape(inputs)[0], training)
        outputs = tf.scan(lambda h, x: self.step(x, h, x_mask, h_mask),
                          tf.transpose(inputs, [1, 0, 2]), initializer=hidden,
                          parallel_iterations=SCAN_ITERATIONS)
        return tf.transpose(outputs, [1, 0, 2]), outputs[-1]

    def get_config(self):
        config = super().get_config()
        config.pop("steps")
        config.update(recurrent=[list(p) for p in self.recurrent], concat=list(self.concat))
        return config


@keras.saving.register_keras_serializable(package="nasp_tf")
class RNNModel(keras.layers.Layer):
    """The word-level language model around a recurrent cell (DARTS's `RNNModel`).

    Embedding with embedding dropout (whole words), locked dropout on the
    embeddings and on the cell outputs, one cell layer, a decoder tied to the
    embedding (plus a bias). `call` returns the logits, the new hidden state
    (the caller carries it to the next BPTT chunk, without gradient), the
    raw cell outputs (for TAR) and the dropped ones (for AR).

    Args:
      vocab_size: ntoken.
      cell: a `DARTSCell` or an `RNNSearchCell` (its units are ninp = nhid).
      dropout: locked dropout on the cell outputs.
      dropouti: locked dropout on the embeddings.
      dropoute: embedding dropout (rows of the embedding matrix).
    Reference: Liu et al., "DARTS", ICLR 2019, rnn/model.py; Merity et al.,
      "Regularizing and Optimizing LSTM Language Models", ICLR 2018.
    """

    def __init__(self, vocab_size, cell, dropout=0.0, dropouti=0.0, dropoute=0.0, seed=None,
                 **kwargs):
        super().__init__(**kwargs)
        for name, rate in (("dropout", dropout), ("dropouti", dropouti), ("dropoute", dropoute)):
            if not 0.0 <= rate < 1.0:
                raise ValueError(f"{name} must be in [0, 1). Received: {name}={rate}")
        if vocab_size < 2:
            raise ValueError(f"vocab_size must be at least 2. Received: {vocab_size}")
        self.vocab_size = int(vocab_size)
        self.cell = cell
        self.units = cell.units
        self.dropout = float(dropout)
        self.dropouti = float(dropouti)
        self.dropoute = float(dropoute)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed, name="dropout_seed")
        self.embedding = self.add_weight(name="embedding", shape=(vocab_size, self.units),
                                         initializer=uniform_init())
        self.decoder_bias = self.add_weight(name="decoder_bias", shape=(vocab_size,),
                                            initializer="zeros")
        self.built = True

    def embed(self, tokens, training):
        table = self.embedding
        if training and self.dropoute > 0:
            rows = variational_mask([self.vocab_size, 1], self.dropoute, self.seed_generator,
                                    self.compute_dtype)
            table = table * rows
        return tf.gather(table, tokens)

    def locked_dropout(self, x, rate, training):
        if not training or rate <= 0:
            return x
        shape = tf.stack([tf.shape(x)[0], 1, self.units])
        return x * variational_mask(shape, rate, self.seed_generator, x.dtype)

    def call(self, tokens, hidden, weights=None, index=None, mode="discrete", training=None):
        """tokens int [batch, time], hidden [batch, units] -> (logits [batch,
        time, vocab], new hidden, raw outputs, dropped outputs). A search cell
        also takes the architecture (weights, index) and the mode."""
        training = bool(training)
        x = self.locked_dropout(self.embed(tokens, training), self.dropouti, training)
        if weights is None:
            raw, last = self.cell(x, hidden, training=training)
        else:
            raw, last = self.cell(x, hidden, weights=weights, index=index, mode=mode,
                                  training=training)
        dropped = self.locked_dropout(raw, self.dropout, training)
        logits = tf.einsum("btd,vd->btv", dropped, self.embedding) + self.decoder_bias
        # Under a mixed-precision policy everything after the cell is float32:
        # the logits and losses, and the hidden state carried to the next chunk.
        return tuple(tf.cast(t, tf.float32) for t in (logits, last, raw, dropped))

    def zero_state(self, batch):
        return tf.zeros([batch, self.cell.state_size])

    def get_config(self):
        config = super().get_config()
        config.update(vocab_size=self.vocab_size,
                      cell=keras.saving.serialize_keras_object(self.cell),
                      dropout=self.dropout, dropouti=self.dropouti, dropoute=self.dropoute,
                      seed=self.seed)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["cell"] = keras.saving.deserialize_keras_object(config["cell"])
        return cls(**config)


@keras.saving.register_keras_serializable(package="nasp_tf")
class LSTMCellLayer(keras.layers.Layer):
    """A `keras.layers.LSTM` with the recurrent-cell interface of `RNNModel`: the
    state is [h | c] in one tensor. The baseline the searched cells are
    compared with (same embedding, dropouts, decoder and training).

    Args:
      units: hidden size = embedding size.
    Reference: Hochreiter & Schmidhuber, "Long Short-Term Memory", 1997.
    """

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        if units < 1:
            raise ValueError(f"units must be positive. Received: units={units}")
        self.units = int(units)
        self.state_size = 2 * self.units
        self.lstm = keras.layers.LSTM(units, return_sequences=True, return_state=True,
                                      name="lstm")
        self.lstm.build((None, None, units))
        self.built = True

    def call(self, inputs, hidden, training=None):
        h, c = tf.split(hidden, 2, axis=-1)
        outputs, h, c = self.lstm(inputs, initial_state=[h, c], training=training)
        return outputs, tf.concat([h, c], axis=-1)

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units)
        return config


def lstm_language_model(vocab_size, units, dropout=0.0, dropouti=0.0, dropoute=0.0, seed=None,
                        name="lstm_model"):
    """The LSTM baseline: `RNNModel` around one `keras.layers.LSTM` layer."""
    return RNNModel(vocab_size, LSTMCellLayer(units, name="cell"), dropout, dropouti, dropoute,
                    seed, name=name)


def language_model(genotype, vocab_size, units, dropout=0.0, dropouth=0.0, dropoutx=0.0,
                   dropouti=0.0, dropoute=0.0, seed=None, name="rnn_model"):
    """The retraining network of an RNN genotype (anything with `recurrent` and
    `concat`)."""
    cell = DARTSCell(units, genotype.recurrent, genotype.concat, dropoutx, dropouth, seed,
                     name="cell")
    return RNNModel(vocab_size, cell, dropout, dropouti, dropoute, seed, name=name)


def replica_state(batch, units, name):
    """A hidden state that lives on each replica (its own rows of the batch).

    On-read synchronisation keeps one copy per replica that a replica reads
    and writes alone; the copies are aggregated (averaged) only when the host
    reads them, and a reset from the host writes every copy.
    """
    return tf.Variable(tf.zeros([batch, units]), trainable=False, name=name,
                       synchronization=tf.VariableSynchronization.ON_READ,
                       aggregation=tf.VariableAggregation.MEAN)
