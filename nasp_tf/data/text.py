"""Word-level corpora for the recurrent search and retraining (docs/reference.md §7).

A corpus directory holds `train.txt`, `valid.txt` and `test.txt` (or the
`ptb.train.txt`-style names). Every line is split on whitespace and ends with
`<eos>`; one vocabulary grows while reading train, then valid, then test, ids
in order of first appearance (DARTS/awd-lstm-lm's `data.Corpus`).

`batchify` gives the streams batch-major, [batch, tokens], each row one
contiguous piece of the text (the reference's time-major [tokens, batch],
transposed), so a BPTT chunk is `stream[:, i:i + L]` and its targets
`stream[:, i + 1:i + 1 + L]`, and a hidden state carried from chunk to chunk
continues the same row of text.
"""

import dataclasses
import os

import numpy as np

from nasp_tf.errors import DataError

SPLITS = ("train", "valid", "test")
EOS = "<eos>"
# Vocabulary sizes of the awd-lstm-lm preprocessed corpora (docs/reference.md §6.5),
# for building a model without reading the text (--dry_run).
VOCAB_SIZES = {"ptb": 10000, "wt2": 33278, "ptb_sample": 7596}


@dataclasses.dataclass
class Corpus:
    """Token ids of the three splits and the vocabulary they share.

    Args:
      name: where it came from (a directory or `synthetic`).
      words: id -> word.
      train, valid, test: int32 token ids of each split.
    """
    name: str
    words: list
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray

    @property
    def vocab_size(self):
        return len(self.words)


def split_path(directory, split, file_name=None):
    """The file of `split` in `directory`: `file_name` if given (a name inside
    the directory), else `<split>.txt` or `ptb.<split>.txt`."""
    if file_name:
        return os.path.join(directory, file_name)
    for candidate in (f"{split}.txt", f"ptb.{split}.txt"):
        path = os.path.join(directory, candidate)
        if os.path.isfile(path):
            return path
    return os.path.join(directory, f"{split}.txt")


def _lines(path):
    """The lines of a text file; DataError when it cannot be read."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().splitlines()
    except UnicodeDecodeError as e:
        raise DataError(f"{path} is not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror}") from None


def _tokens(lines):
    for line in lines:
        yield from line.split()
        yield EOS


def corpus_of_lines(name, pieces):
    """A `Corpus` of {split: (lines, the file they came from)}: one vocabulary
    grown while reading train, then valid, then test. A split whose file is
    None is deliberately empty (an empty array that nothing reads)."""
    index, words, ids_of = {}, [], {}
    for split in SPLITS:
        lines, origin = pieces[split]
        ids = []
        for token in _tokens(lines):
            if token not in index:
                index[token] = len(words)
                words.append(token)
            ids.append(index[token])
        if origin is not None and (len(ids) < 2 or all(t == index[EOS] for t in ids)):
            raise DataError(f"corpus file {origin} ({split} split) has no words")
        ids_of[split] = np.asarray(ids, np.int32)
    return Corpus(name, words, ids_of["train"], ids_of["valid"], ids_of["test"])


def read_corpus(directory, files=None):
    """Reads a corpus directory into a `Corpus`.

    Args:
      directory: the corpus directory.
      files: optional {split: file name in the directory}, replacing the
        default names of those splits.
    Raises:
      DataError: a missing directory or file, unreadable or empty text.
    """
    files = files or {}
    unknown = set(files) - set(SPLITS)
    if unknown:
        raise ValueError(f"files keys must be among {SPLITS}. Received: {sorted(unknown)}")
    if not os.path.isdir(directory):
        raise DataError(f"corpus directory {directory} does not exist: give --data_dir a "
                        "directory with train.txt, valid.txt and test.txt")
    paths = {split: split_path(directory, split, files.get(split)) for split in SPLITS}
    for split, path in paths.items():
        if not os.path.isfile(path):
            raise DataError(f"corpus file {path} ({split} split) does not exist; a corpus "
                            "directory needs train.txt, valid.txt and test.txt (or "
                            "ptb.train.txt-style names)")
    return corpus_of_lines(directory, {split: (_lines(path), path)
                                       for split, path in paths.items()})


def synthetic_corpus(vocab_size=50, tokens=(20000, 4000, 4000), seed=0):
    """A learnable random corpus: a sparse first-order Markov chain over
    `vocab_size` words (each word has 3 likely successors), so perplexity can
    fall well below `vocab_size`. For tests and offline runs."""
    if vocab_size < 4:
        raise ValueError(f"vocab_size must be at least 4. Received: {vocab_size}")
    rng = np.random.default_rng(seed)
    successors = rng.integers(0, vocab_size, (vocab_size, 3))
    splits = []
    for n in tokens:
        ids = np.empty(n, np.int32)
        ids[0] = rng.integers(vocab_size)
        choice = rng.integers(0, 3, n)
        noise = rng.random(n) < 0.1
        random_word = rng.integers(0, vocab_size, n)
        for t in range(1, n):
            ids[t] = random_word[t] if noise[t] else successors[ids[t - 1], choice[t]]
        splits.append(ids)
    words = [EOS] + [f"w{i}" for i in range(1, vocab_size)]
    return Corpus("synthetic", words, *splits)


def batchify(ids, batch_size):
    """[batch_size, len(ids) // batch_size]: row r is the r-th contiguous piece of
    the text; the tail that does not fill a column is dropped."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive. Received: {batch_size}")
    columns = len(ids) // batch_size
    if columns < 2:
        raise DataError(f"{len(ids)} tokens give fewer than 2 per row at batch size "
                        f"{batch_size}; lower the batch size")
    return np.asarray(ids[:columns * batch_size], np.int32).reshape(batch_size, columns)


def chunk(stream, start, length):
    """(inputs, targets) of the BPTT chunk at `start`: at most `length` steps, as
    the reference's get_batch (shorter at the end of the stream)."""
    length = min(length, stream.shape[1] - 1 - start)
    return stream[:, start:start + length], stream[:, start + 1:start + 1 + length]


def fixed_chunks(stream, bptt):
    """(starts, lengths) of consecutive chunks of `bptt` steps over the whole
    stream, the last one shorter (evaluation, the architecture steps)."""
    starts = np.arange(0, stream.shape[1] - 1, bptt)
    lengths = np.minimum(bptt, stream.shape[1] - 1 - starts)
    return starts, lengths


def random_chunks(stream, bptt, num_chunks, rng, jitter=0.0, max_extra=20):
    """(starts, lengths) of `num_chunks` consecutive chunks of random length.

    The base length is `bptt` with probability 0.95, else bptt / 2 (both
    reference scripts); with `jitter` > 0 the length is max(5, int(N(base,
    jitter))) capped at bptt + `max_extra` (DARTS's rnn/train.py). A walk that
    reaches the end of the stream starts again at its beginning, so every
    epoch has the same number of steps (Keras needs it; the reference's
    epochs vary by a chunk or two).
    """
    columns = stream.shape[1] - 1
    starts, lengths = np.empty(num_chunks, np.int64), np.empty(num_chunks, np.int64)
    position = 0
    for n in range(num_chunks):
        base = bptt if rng.random() < 0.95 else bptt / 2.0
        if jitter > 0:
            length = min(max(5, int(rng.normal(base, jitter))), bptt + max_extra)
        else:
            length = int(base)
        if position >= columns:
            position = 0
        length = max(1, min(length, columns - position))
        starts[n], lengths[n] = position, length
        position += length
    return starts, lengths


def chunk_dataset(stream, starts, lengths):
    """A tf.data.Dataset of (inputs, targets) int32 [batch, None] chunks, in order."""
    import tensorflow as tf

    data = tf.constant(stream, tf.int32)

    def slice_chunk(start, length):
        return (data[:, start:start + length], data[:, start + 1:start + 1 + length])

    pieces = tf.data.Dataset.from_tensor_slices(
        (np.asarray(starts, np.int32), np.asarray(lengths, np.int32)))
    # Unbatched and batched again so the batch axis is static: tf.distribute
    # splits it between replicas (each chunk's rows have the same length).
    return pieces.map(slice_chunk).unbatch().batch(stream.shape[0], drop_remainder=True)


# Corpora by dataset name, and the chunk streams the jobs feed to `fit`.

# Where `--dataset=ptb|wt2` looks without --data_dir (the awd-lstm-lm layout).
DEFAULT_DIRS = {"ptb": "data/penn", "wt2": "data/wikitext-2"}
# The PTB validation and test text shipped with nasp_tf (the offline quick start).
PTB_SAMPLE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ptb_sample")
PTB_SAMPLE_VALID, PTB_SAMPLE_TEST = "ptb.valid.txt", "ptb.test.txt"
# What reads what: nothing a search, a checkpoint selection or a schedule looks
# at is in the text a test perplexity is reported on.
PURPOSES = ("search", "train")


def ptb_sample_corpus(purpose, directory=None):
    """The shipped PTB sample, split by lines for `purpose`.

    search: the weights train on the first half of ptb.valid.txt's lines, the
      architecture steps and the validation run on the second half; the test
      text is not read (its split is empty).
    train: retraining trains on the whole of ptb.valid.txt, validates (the
      best checkpoint, the switch to averaged SGD) on the first half of
      ptb.test.txt's lines and reports test perplexity on the second half.
    """
    if purpose not in PURPOSES:
        raise ValueError(f"purpose must be one of {PURPOSES}. Received: {purpose!r}")
    directory = directory or PTB_SAMPLE_DIR
    valid_path = os.path.join(directory, PTB_SAMPLE_VALID)
    valid = _lines(valid_path)
    if purpose == "search":
        half = len(valid) // 2
        pieces = {"train": (valid[:half], valid_path), "valid": (valid[half:], valid_path),
                  "test": ([], None)}
    else:
        test_path = os.path.join(directory, PTB_SAMPLE_TEST)
        test = _lines(test_path)
        half = len(test) // 2
        pieces = {"train": (valid, valid_path), "valid": (test[:half], test_path),
                  "test": (test[half:], test_path)}
    return corpus_of_lines(f"ptb_sample ({purpose} split)", pieces)


def load_corpus(dataset, data_dir=None, train_file="", valid_file="", test_file="",
                max_tokens=0, seed=0, purpose="train"):
    """The corpus of a text dataset: a directory (`ptb`, `wt2`; file names that
    are given replace the default names of their split), the shipped
    `ptb_sample` (split for `purpose`, see `ptb_sample_corpus`), or
    `synthetic_text`; each split cut to `max_tokens` when that is > 0. A
    search weighs on the train split and steps the architecture on the
    valid split; it never reads the test split."""
    if dataset == "synthetic_text":
        corpus = synthetic_corpus(seed=seed)
    elif dataset == "ptb_sample":
        corpus = ptb_sample_corpus(purpose)
    else:
        names = {"train": train_file, "valid": valid_file, "test": test_file}
        corpus = read_corpus(data_dir or DEFAULT_DIRS[dataset],
                             {split: name for split, name in names.items() if name})
    if max_tokens:
        for split in SPLITS:
            setattr(corpus, split, getattr(corpus, split)[:max_tokens])
    return corpus


def corpus_streams(config, purpose):
    """(corpus, train stream, validation stream, steps per epoch) of a text
    search or retraining `config` (`nasp_tf.config`): the corpus split for
    `purpose`, its train split batchified at `batch_size`, its valid split
    at `eval_batch_size`, and --steps_per_epoch or one pass over the train
    stream."""
    corpus = load_corpus(config.dataset, config.data_dir, config.train_file, config.valid_file,
                         config.test_file, config.max_tokens, config.seed, purpose=purpose)
    train = batchify(corpus.train, config.batch_size)
    valid = batchify(corpus.valid, config.eval_batch_size)
    return corpus, train, valid, config.steps_per_epoch or steps_per_epoch(train, config.bptt)


def steps_per_epoch(stream, bptt):
    """Training steps in one pass over a stream in chunks of about `bptt`."""
    return max(1, (stream.shape[1] - 1) // bptt)


def eval_chunks(stream, bptt):
    """Consecutive chunks of `bptt` steps over a whole stream (validation, test)."""
    return chunk_dataset(stream, *fixed_chunks(stream, bptt)).prefetch(2)


def training_chunks(stream, bptt, steps, first_epoch, epochs, seed, jitter=0.0):
    """Random-length chunks for epochs first_epoch..epochs-1, `steps` per epoch,
    drawn from a generator seeded by (seed, epoch), so a resumed run sees the
    same chunks as an uninterrupted one. `jitter` = 0 gives the search
    lengths (35, or 17 w.p. 0.05); 5 gives DARTS's rnn/train.py lengths."""
    starts, lengths = [], []
    for epoch in range(first_epoch, epochs):
        s, n = random_chunks(stream, bptt, steps, np.random.default_rng([seed, epoch]),
                             jitter=jitter)
        starts.append(s)
        lengths.append(n)
    return chunk_dataset(stream, np.concatenate(starts), np.concatenate(lengths))


def search_pairs(train_stream, search_stream, bptt, steps, first_epoch, epochs, seed):
    """(train chunk, search chunk) pairs for epochs first_epoch..epochs-1.

    Train chunks as `training_chunks` (the search lengths); search chunks walk
    the search stream in steps of `bptt`, wrapping around, independently of
    the training position.
    """
    import tensorflow as tf

    search_starts, search_lengths = fixed_chunks(search_stream, bptt)
    full = search_lengths == bptt
    search_starts = search_starts[full] if full.any() else search_starts
    total = steps * (epochs - first_epoch)
    offset = (steps * first_epoch) % len(search_starts)
    picks = (offset + np.arange(total)) % len(search_starts)
    search = chunk_dataset(search_stream, search_starts[picks],
                           np.full(total, min(bptt, search_stream.shape[1] - 1)))
    train = training_chunks(train_stream, bptt, steps, first_epoch, epochs, seed)
    return tf.data.Dataset.zip((train, search)).prefetch(2)
