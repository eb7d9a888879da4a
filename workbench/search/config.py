"""The plain data a search shares with its readers: what to run, what came out.

A leaf: it imports nothing of the workbench at run time, so the report, export and
tracking rooms read these types without importing the tuner.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from workbench.spaces import SearchSpace
    from workbench.tasks import TaskData, TaskSpec

TUNERS = ("random", "bayesian", "hyperband", "grid")
#: The hyperparameters every trial run carries as MLflow params, in this order.
PARAM_NAMES = (
    "cell",
    "depth",
    "bidirectional",
    "units",
    "clipping",
    "clip_threshold",
    "learning_rate",
    "dropout",
    "batch_size",
    "epochs",
    "readout",
    "patience",
)


@dataclass(frozen=True)
class ClusterConfig:
    """A distributed search: this process is the chief (it serves KerasTuner's oracle)."""

    #: Worker processes the chief starts on this host (0: workers join from elsewhere).
    local_workers: int = 0
    #: Where the chief listens; loopback unless told otherwise.
    host: str = "127.0.0.1"
    #: 0 picks a free port.
    port: int = 0
    #: A worker silent this long is lost: its trial is recorded FAILED.
    worker_timeout: float = 120.0
    #: How often a worker says it is alive.
    heartbeat_seconds: float = 5.0


@dataclass(frozen=True)
class SearchConfig:
    """Everything one search needs, validated. Build it with :func:`make_search_config`."""

    task: TaskSpec
    space: SearchSpace
    tuner: str
    max_trials: int
    seed: int
    experiment: str
    tracking_uri: str
    state_dir: Path
    overwrite: bool = False
    keep_checkpoints: int = 3
    #: Trainings per configuration, each with its own seed; the trial's score is their mean.
    repeats: int = 1
    #: TensorFlow's deterministic ops (``enable_op_determinism``): bit-identical reruns.
    deterministic: bool = False
    #: Hyperband: whole iterations of all its brackets (``max_trials`` is then their size).
    hyperband_iterations: int = 1
    #: Cross-validation folds of train + validation as the trial's objective: 0 decides
    #: from the validation size (:func:`folds_for`), 1 is off (the validation part).
    folds: int = 0
    #: Keras' mixed_float16 policy (float16 compute, float32 weights, loss scaling, a
    #: float32 head): for GPUs with tensor cores.
    mixed_precision: bool = False
    #: The gradient probe (gradient health per epoch, see ``meters.GradientProbe``); off
    #: saves its trace per new architecture (0.3-0.8 s on 2 CPU cores), and the trials
    #: then have no ``grad_*`` metrics.
    gradient_probe: bool = True
    #: Keras' ``steps_per_execution``: training steps per call of the traced training
    #: function (per-batch checks then run once per call). Changes the speed, not the
    #: training: the same steps in the same order.
    steps_per_execution: int = 1
    #: A distributed search (chief and workers); None: one process runs every trial.
    cluster: ClusterConfig | None = None
    #: What the user should know about these options before the search starts.
    notes: tuple[str, ...] = ()


#: ``--max-trials`` when not given (a grid runs whole, Hyperband whole brackets).
DEFAULT_MAX_TRIALS = 10


def hyperband_trials(max_epochs: int, iterations: int = 1, factor: int = 3) -> int:
    """The trials KerasTuner's Hyperband runs in ``iterations`` whole iterations.

    Its brackets: as many as ``max_epochs`` can be divided by ``factor`` staying at or
    above one epoch; bracket ``b`` has ``b + 1`` rounds of
    ``ceil(ceil(1 + log_factor(max_epochs)) / (b + 1) * factor ** (b - round))`` trials.
    """
    import math

    epochs, brackets = float(max_epochs), 0
    while epochs >= 1:
        epochs /= factor
        brackets += 1
    end = math.ceil(1 + math.log(max_epochs, factor))
    sizes = (
        math.ceil(end / (b + 1) * factor ** (b - r)) for b in range(brackets) for r in range(b + 1)
    )
    return sum(sizes) * iterations


#: A small training set still gets about this many optimizer steps per epoch: the batch
#: size is capped at ceil(training samples / MIN_STEPS_PER_EPOCH) (12 samples: batch 2, 6
#: steps).
MIN_STEPS_PER_EPOCH = 8


def batch_size_used(batch_size: int, samples: int) -> int:
    """The space's batch size, capped so an epoch has about :data:`MIN_STEPS_PER_EPOCH`
    steps or more: 30 series at batch 128 would otherwise be one step an epoch."""
    import math

    return max(1, min(batch_size, math.ceil(samples / MIN_STEPS_PER_EPOCH)))


#: Fewer validation samples than this and a score moves in steps too coarse to rank by:
#: at 50 the binomial standard error of an accuracy near 0.5 is already 0.07.
SMALL_VALIDATION = 50
#: Folds when they are decided from the validation size.
AUTO_FOLDS = 5


def folds_for(
    requested: int,
    val_samples: int,
    smallest_class: int | None,
    time_ordered: bool = False,
    samples: int | None = None,
) -> int:
    """The folds a search uses: ``requested`` when given (>= 1), else :data:`AUTO_FOLDS`
    when the validation part has fewer than :data:`SMALL_VALIDATION` samples, else 1.
    Stratified folds need every class in each: never more folds than the smallest class.
    Folds decided here are never more than the train + validation ``samples`` (each
    validates on one sample at least); folds asked for are refused there instead.
    Time-ordered data (forecasting) keep their validation part unless folds are asked for:
    rolling origins over a short series leave the first folds almost nothing to train on."""
    small = val_samples < SMALL_VALIDATION and not time_ordered
    folds = requested if requested >= 1 else (AUTO_FOLDS if small else 1)
    if folds > 1 and smallest_class is not None:
        folds = max(1, min(folds, smallest_class))
    if requested < 1 and samples is not None and folds > samples:
        folds = max(1, samples)
    return folds


#: Repeat ``r`` of a trial trains with seed ``seed + trial index + REPEAT_SEED_STRIDE * r``.
REPEAT_SEED_STRIDE = 100003
#: The largest ``--seed``: each training's seed (the search's, plus the trial index and the
#: repeat's stride) must stay under 2**32 for NumPy, and the Oracle's seed is one more.
MAX_SEED = 2**31 - 1


def trial_seed(seed: int, trial_id: str | int, repeat: int = 0) -> int:
    """The seed of one training: the search's seed, the trial's index (from 0), the repeat."""
    return seed + int(trial_id) + REPEAT_SEED_STRIDE * repeat


T = TypeVar("T")


def best_of(
    items: Iterable[T], direction: str, key: Callable[[T], float] | None = None
) -> T | None:
    """The best item by ``key`` (the item itself when None): the least for ``direction``
    ``"min"``, the greatest for ``"max"``; the first on ties; None when there is none.

    NaN values are passed over.
    """
    measure = key or (lambda item: item)  # type: ignore[assignment,return-value]
    kept = [item for item in items if measure(item) == measure(item)]  # NaN != NaN
    if not kept:
        return None
    return (min if direction == "min" else max)(kept, key=measure)  # type: ignore[type-var]


@dataclass(frozen=True)
class TrialResult:
    """The outcome of one trial, as reported to the user."""

    trial_id: str
    number: int
    values: dict[str, Any]
    status: str  # "completed", "failed", "diverged", "oom", "skipped"
    score: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    run_id: str | None = None
    failure: str | None = None
    #: The worker that ran it, in a distributed search.
    worker: str = ""
    #: Recorded FINISHED by an earlier process (stopped before KerasTuner saved the trial):
    #: taken from MLflow, not trained again.
    reused: bool = False
    #: Trained to its end after the chief had ended its run (the worker was declared
    #: lost, or the trial started again elsewhere): logged, not the study's record.
    late: bool = False


@dataclass(frozen=True)
class SearchResult:
    """What a finished search found and where it is recorded."""

    experiment: str
    parent_run_id: str
    tracking_uri: str
    objective: str
    direction: str
    trials: tuple[TrialResult, ...]
    best: TrialResult | None
    resumed: bool
    max_trials: int = 0
    #: The short answer (the report's first section), one sentence a line.
    answer: tuple[str, ...] = ()
    #: Direct links into ``workbench ui``: the study's runs, the compare page of its trials.
    links: tuple[str, ...] = ()


class SearchReporter(Protocol):
    """Receives progress events; the command line draws them, tests may record them."""

    def search_started(
        self, config: SearchConfig, data: TaskData, resumed: bool, done_before: int
    ) -> None: ...

    def trial_started(self, number: int, total: int, values: dict[str, Any]) -> None: ...

    def epoch_ended(self, epoch: int, epochs: int, metrics: dict[str, float]) -> None: ...

    def trial_ended(self, result: TrialResult) -> None: ...

    def chief_started(self, address: str, local_workers: int, logs: str = "") -> None: ...

    def trial_requeued(self, number: int, worker: str) -> None: ...

    def worker_joining(self, address: str, seconds: float) -> None: ...

    def chief_silent(self, address: str, seconds: float | None) -> None: ...


class QuietReporter:
    """A reporter that draws nothing."""

    def search_started(self, *args: Any) -> None: ...

    def trial_started(self, *args: Any) -> None: ...

    def epoch_ended(self, *args: Any) -> None: ...

    def trial_ended(self, *args: Any) -> None: ...

    def chief_started(self, *args: Any) -> None: ...

    def trial_requeued(self, *args: Any) -> None: ...

    def worker_joining(self, *args: Any) -> None: ...

    def chief_silent(self, *args: Any) -> None: ...
