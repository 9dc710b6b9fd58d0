import os

import numpy as np
import pytest

from nasp_tf.data import text
from nasp_tf.data.images import DataError


def test_reader_ids_follow_first_appearance_with_eos(corpus_dir):
    corpus = text.read_corpus(corpus_dir())
    assert corpus.words == ["a", "b", "<eos>", "c", "d", "e"]
    np.testing.assert_array_equal(corpus.train, [0, 1, 2, 3, 0, 2])
    np.testing.assert_array_equal(corpus.valid, [1, 4, 2])
    np.testing.assert_array_equal(corpus.test, [5, 2])
    assert corpus.vocab_size == 6


def test_reader_ptb_style_names_and_chosen_files(corpus_dir):
    directory = corpus_dir(prefix="ptb.")
    corpus = text.read_corpus(directory)
    assert corpus.words[:3] == ["a", "b", "<eos>"]
    # Train on the valid file and validate on the test file (the quick start):
    # each file is read once and the vocabulary starts with the train file.
    swapped = text.read_corpus(directory, {"train": "ptb.valid.txt",
                                              "valid": "ptb.test.txt", "test": "ptb.test.txt"})
    assert swapped.words == ["b", "d", "<eos>", "e"]
    np.testing.assert_array_equal(swapped.valid, swapped.test)


@pytest.mark.parametrize("case,message", [
    ("no_dir", "does not exist"),
    ("no_test", "test split) does not exist"),
    ("empty_valid", "valid split) has no words"),
    ("binary_train", "is not UTF-8"),
])
def test_reader_bad_input_is_one_line_data_error(tmp_path, corpus_dir, case, message):
    directory = str(tmp_path / "corpus")
    if case == "no_test":
        corpus_dir(test=None)
    elif case == "empty_valid":
        corpus_dir(valid="\n\n")
    elif case == "binary_train":
        corpus_dir()
        with open(os.path.join(directory, "train.txt"), "wb") as f:
            f.write(b"\xff\xfe\x00abc")
    with pytest.raises(DataError) as info:
        text.read_corpus(directory)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_batchify_rows_are_contiguous_and_tail_dropped():
    ids = np.arange(23)
    stream = text.batchify(ids, 4)
    assert stream.shape == (4, 5)
    # Row r is the r-th piece of the text (the reference's columns).
    np.testing.assert_array_equal(stream[1], [5, 6, 7, 8, 9])
    np.testing.assert_array_equal(stream.reshape(-1), np.arange(20))
    with pytest.raises(DataError):
        text.batchify(ids, 20)


def test_chunks_targets_are_inputs_shifted_by_one():
    stream = text.batchify(np.arange(40), 2)  # rows 0..19 and 20..39
    x, y = text.chunk(stream, 17, 5)
    np.testing.assert_array_equal(x, [[17, 18], [37, 38]])  # shortened at the end
    np.testing.assert_array_equal(y, [[18, 19], [38, 39]])
    starts, lengths = text.fixed_chunks(stream, 7)
    np.testing.assert_array_equal(starts, [0, 7, 14])
    np.testing.assert_array_equal(lengths, [7, 7, 5])  # every target used once
    assert lengths.sum() == stream.shape[1] - 1


def test_random_chunks_are_consecutive_and_bounded():
    stream = np.zeros((3, 1001), np.int32)
    rng = np.random.default_rng(0)
    starts, lengths = text.random_chunks(stream, 35, 200, rng, jitter=5.0)
    assert lengths.min() >= 1 and lengths.max() <= 55
    # Consecutive, except where the walk wraps to the start of the stream.
    follows = starts[1:] == starts[:-1] + lengths[:-1]
    wraps = starts[1:] == 0
    assert np.all(follows | wraps) and wraps.sum() >= 1
    assert np.all(starts + lengths <= 1000)
    plain_starts, plain = text.random_chunks(stream, 35, 400, np.random.default_rng(1))
    assert set(plain[plain_starts + 35 < 1000]) <= {35, 17}


def test_synthetic_corpus_is_deterministic_and_predictable():
    a, b = text.synthetic_corpus(20, (3000, 500, 500), seed=3), \
        text.synthetic_corpus(20, (3000, 500, 500), seed=3)
    np.testing.assert_array_equal(a.train, b.train)
    assert a.vocab_size == 20 and a.train.max() < 20
    # A Markov chain with 3 likely successors: per word, its 3 most frequent
    # successors cover most transitions (10% are uniform noise).
    bigrams = np.zeros((20, 20))
    np.add.at(bigrams, (a.train[:-1], a.train[1:]), 1)
    top3 = np.sort(bigrams, axis=1)[:, -3:].sum()
    assert top3 / bigrams.sum() > 0.85


def test_chunk_dataset_matches_numpy_slices():
    import tensorflow as tf  # noqa: F401  (the dataset needs TensorFlow)

    stream = text.batchify(np.arange(60), 3)
    starts, lengths = text.fixed_chunks(stream, 6)
    batches = list(text.chunk_dataset(stream, starts, lengths).as_numpy_iterator())
    assert len(batches) == len(starts)
    for (x, y), s, n in zip(batches, starts, lengths):
        ex, ey = text.chunk(stream, s, n)
        np.testing.assert_array_equal(x, ex)
        np.testing.assert_array_equal(y, ey)


def test_real_ptb_valid_and_test(shared_data):
    corpus = text.read_corpus(os.path.join(shared_data, "ptb"), {
        "train": "ptb.valid.txt", "valid": "ptb.test.txt", "test": "ptb.test.txt"})
    # 70,390 words + 3,370 line ends in ptb.valid.txt (wc), a vocabulary under 10k.
    assert len(corpus.train) == 73760
    assert corpus.vocab_size < 10000
    assert corpus.words[corpus.train[-1]] == "<eos>"


def _lines_as_ids(corpus, ids):
    """The text of token ids, one line per <eos>."""
    words = [corpus.words[i] for i in ids]
    return " ".join(words).split(" <eos>")[:-1]


def test_ptb_sample_search_never_holds_the_test_text_and_retraining_splits_it():
    valid = open(os.path.join(text.PTB_SAMPLE_DIR, "ptb.valid.txt")).read().splitlines()
    test = open(os.path.join(text.PTB_SAMPLE_DIR, "ptb.test.txt")).read().splitlines()
    norm = [" ".join(line.split()) for line in valid]
    search = text.load_corpus("ptb_sample", purpose="search")
    assert len(search.test) == 0
    half = len(valid) // 2
    assert [" ".join(line.split()) for line in _lines_as_ids(search, search.train)] == \
        [line.strip() for line in norm[:half]]
    assert [" ".join(line.split()) for line in _lines_as_ids(search, search.valid)] == \
        [line.strip() for line in norm[half:]]
    retrain = text.load_corpus("ptb_sample", purpose="train")
    half = len(test) // 2
    assert len(retrain.train) == sum(len(line.split()) + 1 for line in valid)
    assert len(retrain.valid) == sum(len(line.split()) + 1 for line in test[:half])
    assert len(retrain.test) == sum(len(line.split()) + 1 for line in test[half:])
    assert _lines_as_ids(retrain, retrain.test)[0].split() == test[half].split()
    with pytest.raises(ValueError, match="purpose"):
        text.load_corpus("ptb_sample", purpose="test")
