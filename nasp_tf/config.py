"""The settings of every program, typed and with each default written once.

`SearchConfig`, `TrainConfig` and `BenchConfig` are frozen dataclasses: the
flags of bin/search.py, bin/train.py and bin/bench.py (`nasp_tf.cli`) take
their defaults from them and are parsed into them, and searchers, recipes
and the benchmarks read them (tests build them directly:
`SearchConfig(epochs=2, searcher="darts1")`). No TensorFlow here.

A field's `metadata` may hold its flag's help and its choices: the flags
only some searchers read (`nasp_tf.search.registry.SEARCHER_FLAGS`) are
defined from it, so a searcher with a setting of its own touches its module,
the registry and this file only.
"""

import dataclasses


def setting(default, help_text="", choices=None, lower=None, upper=None):
    """A field with its flag's help, choices and bounds in the metadata."""
    return dataclasses.field(default=default, metadata={
        "help": help_text, "choices": choices, "lower": lower, "upper": upper})


@dataclasses.dataclass(frozen=True)
class RunSettings:
    """What every run shares: its directory, strategy, seeds and faults."""
    output_dir: str = "runs/run"
    resume: bool = True
    overwrite: bool = False
    verbose: int = 1
    seed: int = 0
    deterministic: bool = False
    strategy: str = "default"
    cpu_devices: int = 0
    on_nan: str = "stop"
    checkpoint_every: str = "5m"
    mixed_precision: str = "float32"

    @classmethod
    def fields(cls):
        """The names of the settings."""
        return [f.name for f in dataclasses.fields(cls)]

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)


@dataclasses.dataclass(frozen=True)
class TextSettings:
    """The recurrent-model settings shared by text search and retraining
    (DARTS's rnn/ values; retraining overrides some)."""
    train_file: str = ""
    valid_file: str = ""
    test_file: str = ""
    rnn_units: int = 300
    rnn_steps: int = 8
    bptt: int = 35
    eval_batch_size: int = 10
    dropout: float = 0.75
    dropouth: float = 0.25
    dropoutx: float = 0.75
    dropouti: float = 0.2
    dropoute: float = 0.0
    tar_beta: float = 1e-3
    ar_alpha: float = 0.0
    max_tokens: int = 0


@dataclasses.dataclass(frozen=True)
class SearchConfig(TextSettings, RunSettings):
    """bin/search.py: a search (images: a CNN cell; text: the recurrent cell)."""
    output_dir: str = "runs/search"
    seed: int = 2
    dataset: str = "cifar10"
    data_dir: str = None
    image_size: str = None
    download: bool = True
    space: str = "darts7"
    searcher: str = "nasp"
    epochs: int = 50
    batch_size: int = 64
    steps_per_epoch: int = 0
    init_channels: int = 16
    layers: int = 8
    nodes: int = 4
    learning_rate: float = 0.025
    learning_rate_min: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0
    arch_learning_rate: float = 3e-4
    arch_beta1: float = 0.5
    arch_lr_schedule: str = "constant"
    arch_weight_decay: float = 1e-3
    train_portion: float = 0.5
    cutout: int = 0
    max_examples: int = 0
    jit_compile: bool = False
    task: str = "classification"
    dry_run: bool = False
    json: str = None
    # Read by some searchers only (nasp_tf.search.registry.SEARCHER_FLAGS).
    eta: float = setting(0.0, "Weight of the complexity penalty R(A) (NASP eq. 8).",
                         lower=0.0)
    penalize: str = setting("normal", "Penalise the normal cell's matrix (the code) or "
                            "both (the paper).", choices=("normal", "all"))
    prox_value: str = setting("one", "prox_c1 sets the kept entry to 1 (the code) or keeps "
                              "its value (the paper).", choices=("one", "keep"))
    derive: str = setting("complete", "Final genotype: the trained discrete architecture, "
                          "or the code's softmax re-derivation.",
                          choices=("complete", "softmax"))
    pa_learning_rate: float = setting(
        None, "PA-standard and PA-lazy: the step size eps of the plain step A - eps * grad "
        "(eqs. 10, 11); default 3 for pa, 0.1 for pa_lazy, the steps at which A keeps "
        "moving through a search (docs/fidelity.md).", lower=0.0)
    pa_order: str = setting("2", "PA-standard and PA-lazy: 2, the gradient of eq. 6 with "
                            "DARTS's second-order approximation (the paper); 1, NASP's "
                            "first-order gradient at Ā.", choices=("1", "2"))
    max_params: int = setting(
        0, "NASP on images: a size budget instead of a fixed --eta. The final network of "
        "--train_flagfile gets at most N parameters: eta (starting at --eta) rises while "
        "the selected cell's network is over N and falls while under (both cells are "
        "penalised), and the returned cell is fitted to N. 0: no budget.", lower=0)
    train_flagfile: str = setting(
        None, "--max_params: the bin/train.py flagfile whose network the budget counts, "
        "and --search_seeds: the retraining that scores each cell (--init_channels, "
        "--layers, ...; e.g. configs/quickstart_train.flags); default bin/train.py's "
        "defaults (C=36, 20 cells).")
    search_seeds: int = 1
    select_epochs: int = 10
    select_split: float = 0.1


@dataclasses.dataclass(frozen=True)
class TrainConfig(TextSettings, RunSettings):
    """bin/train.py: a final network retrained from a genotype, and its export."""
    output_dir: str = "runs/train"
    genotype: str = None
    space: str = None
    choices: str = None
    task: str = "classification"
    dataset: str = "cifar10"
    data_dir: str = None
    image_size: str = None
    manual_dir: str = None
    download: bool = True
    init_channels: int = 36
    layers: int = 20
    auxiliary: bool = True
    aux_weight: float = 0.4
    drop_path_prob: float = 0.2
    cutout: int = 16
    epochs: int = 600
    batch_size: int = 96
    steps_per_epoch: int = 0
    learning_rate: float = 0.025
    lr_schedule: str = "cosine"
    learning_rate_min: float = 0.0
    lr_gamma: float = 0.97
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0
    label_smoothing: float = 0.0
    max_examples: int = 0
    dry_run: bool = False
    export_only: bool = False
    export: bool = True
    export_tflite: bool = False
    save_predictions: bool = False
    select_split: float = 0.0
    # Text retraining: DARTS's rnn/train.py values.
    rnn_units: int = 850
    dropoute: float = 0.1
    nonmono: int = 5
    asgd: bool = True
    test_batch_size: int = 1


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    """bin/bench.py: the step benchmark (default), --convergence, --eta_sweep,
    --quality or --latency (docs/benchmarks.md, docs/quality.md)."""
    preset: str = "small"
    task: str = "images"
    space: tuple = ("darts7",)
    searchers: tuple = ("nasp", "darts1", "darts2")
    mixed_precision: tuple = ("float32",)
    steps: int = 10
    warmup: int = 3
    rounds: int = 2
    pin: tuple = ()
    json: str = None
    seed: int = 2
    convergence: bool = False
    budget: float = 240.0
    eval_every: float = 10.0
    eta_sweep: tuple = ()
    budget_sweep: tuple = ()
    sweep_epochs: int = 10
    train_epochs: int = 10
    quality: bool = False
    ranking: bool = False
    quick: bool = False
    quality_tasks: tuple = ("images", "text")
    quality_searchers: tuple = ()
    random_cells: int = 0
    quality_jobs: int = 0  # 0: one per CPU core this process may use
    pipeline: bool = False
    latency: tuple = ()
    output_dir: str = "runs/bench"

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)


def from_values(cls, values):
    """A `cls` from a mapping (or absl's FlagValues) holding at least its
    fields; lists become tuples."""
    kwargs = {}
    for field in dataclasses.fields(cls):
        value = values[field.name]
        value = getattr(value, "value", value)
        kwargs[field.name] = tuple(value) if isinstance(value, list) else value
    return cls(**kwargs)


def _parse(field, text):
    kind = field.type
    if kind is bool:
        return text.lower() in ("1", "true", "yes")
    if kind is int:
        return int(text)
    if kind is float:
        return float(text)
    if kind is tuple:
        return tuple(v for v in text.split(",") if v)
    return text


def from_flagfile(cls, path, **overrides):
    """A `cls` from a flagfile's `--name=value`, `--name` and `--noname` lines
    (e.g. a shipped config), then `overrides`. Lines naming no field of `cls`
    are ignored."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = {}
    with open(path, encoding="utf-8") as f:
        for line in (line.strip() for line in f):
            if not line.startswith("--"):
                continue
            name, equals, text = line[2:].partition("=")
            if not equals and name.startswith("no") and name[2:] in fields:
                values[name[2:]] = False
            elif name in fields:
                values[name] = _parse(fields[name], text) if equals else True
    values.update(overrides)
    return cls(**values)
