"""Reports: each section's numbers on hand-made studies with known answers, then one real study."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy import stats

import workbench.report as reports
from workbench.cli import main
from workbench.errors import WorkbenchError
from workbench.tracking import StudyRecord, StudyTrial, load_study
from workbench.tracking.reader import _client_study_rows, _sqlite_study_rows

_DEFAULTS = {
    "cell": "lstm",
    "depth": "1",
    "bidirectional": "False",
    "units": "16",
    "clipping": "none",
    "clip_threshold": "none",
    "learning_rate": "0.001",
    "dropout": "0",
    "batch_size": "32",
    "epochs": "3",
}


def _trial(number: int, score: float | None, status: str = "FINISHED", **params) -> StudyTrial:
    metrics: dict[str, float] = {}
    extra = {
        k: params.pop(k)
        for k in list(params)
        if k in reports.COST_METRICS
        or k.startswith(("test_", "baseline_", "checkpoint_"))
        or k == "optimizer_steps"
    }
    repeats = params.pop("repeats", None)
    histories = params.pop("histories", {})
    tags = {"cell": params.get("cell", "lstm"), **params.pop("tags", {})}
    if score is not None:
        metrics["score"] = score
    if repeats:
        metrics.update({f"score_r{k}": v for k, v in enumerate(repeats)})
        metrics["score"] = float(np.mean(repeats))
    metrics.update(extra)
    values = {**_DEFAULTS, **{k: str(v) for k, v in params.items()}}
    return StudyTrial(f"run{number}", number, status, values, metrics, histories, tags, 0.0, 10.0)


def _study(trials: list[StudyTrial], direction: str = "max") -> StudyRecord:
    objective = "val_accuracy" if direction == "max" else "val_loss"
    return StudyRecord(
        tracking_uri="sqlite:///unused.db",
        experiment="hand-made",
        experiment_id="1",
        parent_run_id="parent",
        parent_params={"direction": direction, "objective": objective, "task": "t"},
        parent_tags={"task": "t", "space": "s", "tuner": "grid", "baseline": "majority: 0.5"},
        parent_metrics={},
        parent_start=0.0,
        parent_end=100.0,
        trials=tuple(trials),
    )


def test_mean_ci_is_the_student_t_interval() -> None:
    mean, std, low, high = reports.mean_ci([1, 2, 3, 4, 5])
    half = 2.7764451 * math.sqrt(2.5) / math.sqrt(5)  # t(0.975, 4) * s / sqrt(n)
    assert (mean, std) == pytest.approx((3.0, math.sqrt(2.5)))
    assert (low, high) == pytest.approx((3 - half, 3 + half))
    assert all(math.isnan(v) for v in reports.mean_ci([2.0])[1:])
    assert math.isnan(reports.mean_ci([])[0])


def test_learning_curves_count_trials_and_end_where_most_have_stopped() -> None:
    def curve(values: list[float]) -> tuple[tuple[int, float], ...]:
        return tuple(enumerate(values))

    trials = [  # trial 1 has two repeats: one trial, their mean per epoch
        _trial(1, 0.9, histories={"val_accuracy": curve([0.5, 0.6, 0.7, 0.8, 0.9]),
                                  "val_accuracy_r1": curve([0.3, 0.4, 0.5, 0.6, 0.7])}),
        _trial(2, 0.8, histories={"val_accuracy": curve([0.5, 0.7, 0.8])}),
        _trial(3, 0.6, histories={"val_accuracy": curve([0.6])}),
        _trial(4, 0.6, histories={"val_accuracy": curve([0.6])}),
    ]  # fmt: skip
    curves = reports.build_report(_study(trials)).frames["learning_curves"]
    assert curves["epoch"].tolist() == [0, 1, 2]  # epoch 3 on: 1 of 4 trials still training
    assert curves["n"].tolist() == [4, 2, 2]
    assert curves["median"].tolist() == pytest.approx([0.55, 0.6, 0.7])


def test_many_values_are_binned_in_order_within_the_data() -> None:
    from workbench.report.statistics import _sort_key

    rates = np.geomspace(1e-5, 1e-2, 12)
    trials = [
        _trial(k, 0.5 + k / 100, learning_rate=f"{rate:.6g}", dropout=f"{k * 0.04:.2f}")
        for k, rate in enumerate(rates)
    ]
    scores = reports.trials_frame(_study(trials))
    table = reports.per_parameter(scores, "max")
    bins = table[table["parameter"] == "learning_rate"]["value"].unique().tolist()
    assert len(bins) == 4 and bins == sorted(bins, key=_sort_key)
    lows = [float(b[1:].split(",")[0]) for b in bins]
    assert lows == sorted(lows) and lows[0] == pytest.approx(1e-5, rel=1e-2)
    dropout = table[table["parameter"] == "dropout"]["value"].unique().tolist()
    assert dropout[0].startswith("[0, ")  # not a negative dropout (qcut's open left edge)
    # A value on a bin's edge is in the lower bin: the next one is open on that side (it
    # read "[a, b]" then "[b, c]", both claiming b).
    assert all(b.startswith("(") for b in [*bins[1:], *dropout[1:]])


def test_per_parameter_counts_configurations_not_repeats_and_ignores_failed_trials() -> None:
    trials = [
        _trial(1, None, cell="lstm", units=16, depth=1, repeats=[0.70, 0.72, 0.74]),
        _trial(2, None, cell="lstm", units=16, depth=2, repeats=[0.76, 0.78, 0.80]),
        _trial(3, None, cell="lstm", units=32, repeats=[0.80, 0.82, 0.84]),
        _trial(4, None, cell="gru", units=16, repeats=[0.60, 0.61, 0.62]),
        _trial(5, None, status="FAILED", cell="gru", units=32, tags={"failure": "diverged"}),
    ]
    scores = reports.trials_frame(_study(trials))
    scores = scores[scores["outcome"] == "completed"]
    table = reports.per_parameter(scores, "max")
    row = table[(table["parameter"] == "units") & (table["value"] == "32")]
    assert row["cell"].tolist() == ["lstm"]  # the failed GRU trial adds nothing
    lstm16 = table[(table["parameter"] == "units") & (table["value"] == "16")].iloc[0]
    # Two configurations (their repeats averaged first), not six repeat scores.
    mean, _, low, high = reports.mean_ci([0.72, 0.78])
    assert lstm16["n"] == 2 and lstm16["mean"] == pytest.approx(0.75)
    assert (lstm16["ci_low"], lstm16["ci_high"]) == pytest.approx((low, high))
    assert lstm16["best"] == pytest.approx(0.78)
    assert reports.per_parameter(scores, "min").iloc[0]["best"] == pytest.approx(0.72)


def test_head_to_head_pairs_matched_configurations() -> None:
    rng = np.random.default_rng(0)
    trials, number = [], 0
    lstm = {}
    for units in (8, 16, 32, 64):
        for lr in (0.001, 0.01):
            number += 1
            lstm[(units, lr)] = 0.8 + rng.normal(0, 0.05)
            trials.append(
                _trial(number, lstm[(units, lr)], cell="lstm", units=units, learning_rate=lr)
            )
    differences = 0.1 + rng.normal(0, 0.01, size=len(lstm))
    for (units, lr), diff in zip(lstm, differences, strict=True):
        number += 1
        trials.append(
            _trial(number, lstm[(units, lr)] - diff, cell="gru", units=units, learning_rate=lr)
        )
    table = reports.head_to_head(reports.trials_frame(_study(trials)), "max")
    row = table.iloc[0]
    assert (row["cell_a"], row["cell_b"], row["comparison"], row["n"]) == (
        "lstm",
        "gru",
        "paired",
        8,
    )
    assert row["mean_diff"] == pytest.approx(differences.mean())
    t = differences.mean() / (differences.std(ddof=1) / math.sqrt(8))
    assert row["t"] == pytest.approx(t)
    assert row["p_value"] == pytest.approx(2 * stats.t.sf(abs(t), 7))
    assert row["effect_size"] == pytest.approx(differences.mean() / differences.std(ddof=1))
    assert row["wilcoxon_p"] == pytest.approx(2 / 2**8)  # all 8 differences positive
    assert row["better"] == "lstm"
    # On an error objective the same differences make GRU the better cell.
    assert (
        reports.head_to_head(reports.trials_frame(_study(trials, "min")), "min").iloc[0]["better"]
        == "gru"
    )


def test_holm_adjusts_a_family_of_p_values_step_down() -> None:
    from workbench.report.statistics import holm

    # Sorted 0.01, 0.03, 0.04: x3, x2 (0.06), x1 (0.04, raised to 0.06: monotone).
    assert holm([0.04, 0.01, None, 0.03]) == pytest.approx([0.06, 0.03, None, 0.06])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0]) and holm([]) == []


def _three_cells(rnn_behind: list[float], gru_minus_lstm: list[float]) -> StudyRecord:
    """Three cells on 4 matched configurations (units), differences set per configuration."""
    trials, number = [], 0
    for k, units in enumerate((8, 16, 32, 64)):
        lstm = 0.80 + 0.01 * k
        scores = {"simple_rnn": lstm - rnn_behind[k], "lstm": lstm, "gru": lstm + gru_minus_lstm[k]}
        for cell, score in scores.items():
            number += 1
            trials.append(_trial(number, score, cell=cell, units=units))
    return _study(trials)


def test_three_cells_are_judged_after_holms_correction_over_their_pairs() -> None:
    # SimpleRNN behind both gated cells, p = 0.044 and 0.029 alone: not after Holm.
    study = _three_cells([0.10, 0.30, 0.08, 0.22], [0.01, -0.01, 0.02, -0.005])
    table = reports.head_to_head(reports.trials_frame(study), "max").set_index(["cell_a", "cell_b"])
    for pair in (("simple_rnn", "lstm"), ("simple_rnn", "gru")):
        row = table.loc[pair]
        assert row["p_value"] < 0.05 < row["p_holm"], pair
        assert row["better"] == f"{pair[1]} (not significant)"
    notes = reports.build_report(study).sections[0].notes
    (sentence,) = [n for n in notes if n.startswith("simple_rnn vs lstm on validation")]
    assert "no significant difference" in sentence
    assert "after Holm's correction over the 3 pairs" in sentence
    (advice,) = [n for n in notes if n.startswith("This study cannot settle")]
    assert advice.startswith("This study cannot settle which cell is better:")
    # SimpleRNN far behind: those pairs settle, and the advice names the one left open.
    far_behind = _three_cells([0.30, 0.32, 0.29, 0.31], [0.01, -0.01, 0.02, -0.005])
    notes = reports.build_report(far_behind).sections[0].notes
    assert "lstm beats simple_rnn" in " ".join(notes)
    (advice,) = [n for n in notes if n.startswith("This study cannot settle")]
    assert advice.startswith("This study cannot settle lstm vs gru: its matched comparisons")


def test_unmatched_pairs_are_said_apart_from_matched_pairs_within_the_noise() -> None:
    # LSTM and GRU on 6 matched configurations, a tie; SimpleRNN on other settings, far
    # behind both (Welch). It said the matched comparisons left "which cell is better"
    # within the noise, the two decided Welch pairs included.
    trials, number = [], 0
    for k, units in enumerate((8, 16, 24, 32, 48, 64)):
        noise = (0.01, -0.01, 0.02, -0.005, 0.003, -0.012)[k]
        for cell, score, rate in (
            ("lstm", 0.80 + k / 100, "0.001"),
            ("gru", 0.80 + k / 100 + noise, "0.001"),
            ("simple_rnn", 0.40 + k / 200, "0.01"),
        ):
            number += 1
            trials.append(_trial(number, score, cell=cell, units=units, learning_rate=rate))
    notes = reports.build_report(_study(trials)).sections[0].notes
    text = " ".join(notes)
    assert "lstm beats simple_rnn" in text and "gru beats simple_rnn" in text
    assert "Welch's t-test on 12 trials (fewer than 2 matched configurations), weaker" in text
    advice = [n for n in notes if n.startswith("This study cannot settle")]
    assert len(advice) == 2
    assert advice[0].startswith("This study cannot settle lstm vs gru: its matched comparisons")
    assert advice[1].startswith(
        "This study cannot settle simple_rnn vs lstm, simple_rnn vs gru: those cells met on "
        "fewer than 2 matched configurations"
    )
    assert "--tuner grid --repeats 3" in advice[1]
    # Three pairs tested: each interval is the pair's own, and says so beside Holm's p.
    (pair,) = [n for n in notes if n.startswith("lstm vs gru on validation")]
    assert re.search(r"95% CI \[[^]]+\] uncorrected, p = [\d.e-]+, [\d.e-]+ after Holm", pair)


def test_a_pair_too_small_to_test_is_not_said_to_rest_on_welchs_test() -> None:
    trials, number = [], 0
    for k, units in enumerate((8, 16, 24, 32, 48, 64)):
        for cell, score in (("lstm", 0.80 + k / 100), ("gru", 0.80 + k / 100 + 0.01 * (-1) ** k)):
            number += 1
            trials.append(_trial(number, score, cell=cell, units=units))
    trials.append(_trial(99, 0.4, cell="simple_rnn", units=8, learning_rate="0.01"))
    notes = reports.build_report(_study(trials)).sections[0].notes
    advice = [n for n in notes if n.startswith("This study cannot settle")]
    assert not any("Welch" in n for n in advice)  # no test ran for those pairs
    assert any(n.startswith("This study cannot settle simple_rnn vs lstm, simple_rnn vs gru: "
                            "a cell of each finished too few trials to test") for n in advice)


def test_a_p_value_is_never_rounded_onto_the_other_side_of_five_percent() -> None:
    from workbench.report.answer import p_text

    assert [p_text(p) for p in (0.0497, 0.0504, 0.05, 0.034, 1.8e-13, 0.5)] == [
        "0.0497", "0.0504", "0.05", "0.034", "1.8e-13", "0.5",
    ]  # fmt: skip
    assert p_text(0.049999999) == "0.049999999"
    assert p_text(math.nan) == "nan"


def test_a_benchmark_summarizes_each_task_by_every_pair_of_its_cells() -> None:
    from workbench.report.answer import answer
    from workbench.report.benchmark import _markdown, benchmark_frames

    study = _three_cells([0.30, 0.32, 0.29, 0.31], [0.01, -0.01, 0.02, -0.005])
    trials = reports.trials_frame(study)
    info = reports.overview(study, trials)
    brief = answer(trials, info, reports.head_to_head(trials, "max"), brief=True)
    pairs = [("simple_rnn", "lstm"), ("simple_rnn", "gru"), ("lstm", "gru")]
    assert len(brief) == 3
    assert all(any(a in s and b in s for s in brief) for a, b in pairs)
    markdown = _markdown("b", benchmark_frames({"t": study}), {"t": brief})
    # It showed each task's first two sentences: with three cells, lstm vs gru never.
    (line,) = [line for line in markdown.splitlines() if line.startswith("- t: ")]
    assert all(sentence.replace("**", "") in line for sentence in brief)


def test_a_pair_told_apart_on_test_only_is_said_to_stay_open() -> None:
    trials, number = [], 0
    for k, units in enumerate((8, 16, 32, 64)):
        lstm = 0.80 + 0.01 * k
        noise = (0.01, -0.01, 0.02, -0.005)[k]  # validation: no difference to speak of
        for cell, score, test in (("lstm", lstm, 0.70 + k / 100), ("gru", lstm + noise,
                                  0.75 + k / 100 + (0.002, -0.001, 0.001, 0.0)[k])):
            number += 1
            trials.append(_trial(number, score, cell=cell, units=units, test_accuracy=test))
    notes = reports.build_report(_study(trials)).sections[0].notes
    (pair,) = [n for n in notes if n.startswith("lstm vs gru on validation")]
    assert "On test: gru beats lstm" in pair
    (advice,) = [n for n in notes if n.startswith("This study cannot settle")]
    # It read as a contradiction: gru beats lstm (on test), then "cannot settle" alone.
    assert advice.endswith(
        "(The test part tells lstm vs gru apart, but it is one held-out reading checked after "
        "the fact; validation, which the search chose by, does not.)"
    )


def test_a_paired_verdict_on_few_configurations_says_it_rests_on_normality() -> None:
    def notes(configurations: int) -> str:
        trials, number = [], 0
        for k in range(configurations):  # gru ahead by about 0.1 in each, a little apart
            for cell, score in (("lstm", 0.5 + k / 100), ("gru", 0.6 + k / 100 + k / 1000)):
                number += 1
                trials.append(_trial(number, score, cell=cell, units=4 * (k + 1)))
        found = reports.build_report(_study(trials)).sections[0].notes
        (pair,) = [n for n in found if n.startswith("gru beats lstm on validation")]
        return pair

    # Two configurations, p = 0.006 with one degree of freedom: a verdict, said fragile.
    assert notes(2).endswith(
        "; on only 2 matched configurations: the t-test takes their differences for normal, "
        "which so few cannot show, and Wilcoxon's test, which does not, cannot reach p < 0.05 "
        "below 6: a matched search over 6 or more would confirm it."
    )
    assert "on only" not in notes(6)


def test_equal_differences_from_averaged_repeats_get_no_test() -> None:
    # Two configurations where GRU is ahead by the same 3/370 of test accuracy, as float32
    # metrics averaged over repeats leave it: unequal in the 7th digit.
    def f32(value: float) -> float:
        return float(np.float32(value))

    trials = [
        _trial(1, None, cell="lstm", units=16, repeats=[f32(0.9), f32(0.7 + 1 / 370)]),
        _trial(2, None, cell="gru", units=16, repeats=[f32(0.9 + 3 / 370), f32(0.7 + 4 / 370)]),
        _trial(3, None, cell="lstm", units=32, repeats=[f32(0.1 + 1 / 3), f32(0.2)]),
        _trial(
            4, None, cell="gru", units=32, repeats=[f32(0.1 + 1 / 3 + 3 / 370), f32(0.2 + 3 / 370)]
        ),
    ]
    row = reports.head_to_head(reports.trials_frame(_study(trials)), "max").iloc[0]
    assert row["comparison"] == "paired" and row["n"] == 2
    assert row["mean_diff"] == pytest.approx(-3 / 370, rel=1e-5)
    assert math.isnan(row["p_value"]) and math.isnan(row["ci_low"])
    assert row["better"] == "gru (not significant)"
    assert "no spread to test against" in row["note"]
    notes = reports.build_report(_study(trials)).sections[0].notes
    assert any(
        n.startswith("lstm vs gru on validation")
        and "gru ahead by the same 0.008108 in each of the 2 matched configurations" in n
        for n in notes
    ), notes


def test_head_to_head_falls_back_to_welch_when_nothing_matches() -> None:
    a = [0.70, 0.75, 0.80, 0.72]
    b = [0.60, 0.62, 0.61]
    trials = [
        _trial(i, s, cell="lstm", units=16, learning_rate=0.001 * (i + 1)) for i, s in enumerate(a)
    ]
    trials += [_trial(10 + i, s, cell="gru", units=32) for i, s in enumerate(b)]
    row = reports.head_to_head(reports.trials_frame(_study(trials)), "max").iloc[0]
    assert row["comparison"] == "unpaired"
    assert "weaker" in row["note"] and "no matched configuration" in row["note"]
    welch = stats.ttest_ind(a, b, equal_var=False)
    assert row["mean_diff"] == pytest.approx(np.mean(a) - np.mean(b))
    assert row["p_value"] == pytest.approx(welch.pvalue)
    assert math.isnan(row["wilcoxon_p"])
    # One trial on a side: no test at all, and it says so.
    one = reports.head_to_head(reports.trials_frame(_study(trials[:5])), "max").iloc[0]
    assert one["comparison"] == "none" and "cannot test" in one["note"]


def test_importance_recovers_a_known_variance_split_and_flags_noise() -> None:
    # score = 0.5 + 0.2 [gru] + 0.1 [bidirectional]; depth does nothing. Balanced, so the
    # true main-effect shares are 0.01 / 0.0125 = 0.8 (cell) and 0.0025 / 0.0125 = 0.2.
    trials, number = [], 0
    for cell, c in (("lstm", 0.0), ("gru", 0.2)):
        for bi, b in ((False, 0.0), (True, 0.1)):
            for depth in (1, 2, 3):
                number += 1
                trials.append(_trial(number, 0.5 + c + b, cell=cell, bidirectional=bi, depth=depth))
    table = reports.importance(reports.trials_frame(_study(trials))).set_index("parameter")
    assert table.loc["cell", "share"] == pytest.approx(0.8, abs=0.1)
    assert 0 < table.loc["bidirectional", "share"] < table.loc["cell", "share"]
    assert table.loc["depth", "share"] < 0.05 and table.loc["depth", "below_noise"]
    assert not table.loc["cell", "below_noise"]
    # The floor the others were held against is stated, not only the dummy's own share.
    (noise,) = [i for i in table.index if i.startswith("(noise")]
    floor = float(table.loc[noise, "note"].rsplit(" ", 1)[1])
    assert table.loc[noise, "note"].startswith("the noise floor: this share's 95th percentile")
    assert table.loc["depth", "share"] <= floor < table.loc["bidirectional", "share"]
    real = table.drop(index=[i for i in table.index if i.startswith("(noise")])
    assert real["share"].sum() <= 1.0
    # Ranges over a few refits, not 95% intervals: the lowest and highest share.
    assert (real["range_low"] <= real["range_high"]).all()
    assert table.loc[noise, "range_low"] <= floor <= table.loc[noise, "range_high"]


def test_importance_is_not_estimated_from_one_trial_per_value() -> None:
    # The 6-trial demo's shape: every learning rate seen once. Eta-squared said share 1.0.
    rates = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2)
    trials = [
        _trial(i + 1, 0.1 * i, learning_rate=lr, cell=("lstm", "gru")[i % 2], units=8 << i % 3)
        for i, lr in enumerate(rates)
    ]
    table = reports.importance(reports.trials_frame(_study(trials, "min")))
    assert table["share"].isna().all()
    assert all(note.startswith("cannot be estimated") for note in table["note"])
    assert "6 configurations" in table.set_index("parameter").loc["learning_rate", "note"]


def test_seed_noise_is_a_variance_component_checked_against_scipy() -> None:
    from scipy import stats

    groups = {1: [1.0, 2.0, 3.0], 2: [4.0, 5.0, 6.0], 3: [2.0, 4.0, 6.0]}
    trials = [
        _trial(number, None, repeats=scores, units=8 * number) for number, scores in groups.items()
    ]
    table = reports.seed_variance(reports.repeats_frame(_study(trials))).iloc[0]
    # By hand: MS_within = (2 + 2 + 8) / 6 = 2; MS_between = 3 * sum((mean - 11/3)^2) / 2 = 7;
    # sigma2_config = (7 - 2) / 3; seed share = 2 / (2 + 5/3).
    assert table["sigma2_seed"] == pytest.approx(2.0)
    assert table["sigma2_config"] == pytest.approx(5 / 3)
    assert table["seed_share"] == pytest.approx(2 / (2 + 5 / 3))
    f = stats.f_oneway(*groups.values()).statistic  # MS_between / MS_within
    assert f == pytest.approx(7 / 2)
    assert (table["configurations"], table["repeats"]) == (3, 9)


def test_pareto_front_keeps_what_nothing_beats_on_both() -> None:
    points = [(0.90, 10.0), (0.85, 5.0), (0.80, 6.0), (0.95, 30.0), (0.70, 1.0), (0.94, 40.0)]
    trials = [_trial(i + 1, s, fit_seconds=c, cell="gru") for i, (s, c) in enumerate(points)]
    front = reports.pareto_front(reports.trials_frame(_study(trials)), "max")
    assert front["trial"].tolist() == [5, 2, 1, 4]
    front_min = reports.pareto_front(reports.trials_frame(_study(trials, "min")), "min")
    assert front_min["trial"].tolist() == [5]


def _claims_study(
    quality: float, bi_gain: float, memory: float, memory_kind: str = "gpu_peak"
) -> StudyRecord:
    trials, number = [], 0
    for units in (8, 16, 32):
        for bi in (False, True):
            lstm = 0.6 + units / 1000
            lstm = lstm * (1 + bi_gain) if bi else lstm
            for cell, score, macs, mem in (
                ("lstm", lstm, 4 * units * units, 100.0),
                ("gru", lstm * quality, 3 * units * units, 100.0 * (1 - memory)),
            ):
                number += 1
                trials.append(
                    _trial(
                        number,
                        score,
                        cell=cell,
                        units=units,
                        bidirectional=bi,
                        recurrent_macs=macs,
                        peak_memory_mb=mem,
                        epoch_seconds=1.0,
                        tags={"memory_measure": memory_kind},
                    )
                )
    return _study(trials)


def test_claims_verdicts_follow_the_measured_figures() -> None:
    table = reports.claims(reports.trials_frame(_claims_study(0.87, 0.20, 0.40)), "max")
    assert table["verdict"].tolist() == ["holds", "holds", "holds"]
    assert table["estimate"].tolist() == pytest.approx([0.87, 0.40, 0.20])
    assert "25.0% fewer" in table.iloc[0]["detail"]
    table = reports.claims(reports.trials_frame(_claims_study(1.0, 0.02, 0.05)), "max")
    assert table["verdict"].tolist() == [
        "does not hold (quality above the claimed range)",
        "does not hold (below the claimed range)",
        "does not hold (below the claimed range)",
    ]
    only_lstm = [t for t in _claims_study(0.87, 0.2, 0.4).trials if t.params["cell"] == "lstm"]
    table = reports.claims(reports.trials_frame(_study(only_lstm)), "max")
    assert table["verdict"].tolist()[:2] == ["not enough data", "not enough data"]
    assert table["verdict"].tolist()[2] == "holds"


def test_a_claim_from_one_pair_or_unmatched_trials_is_not_enough_data() -> None:
    # The demo's bidirectional claim: 2 against 4 unmatched trials gave "does not hold".
    trials = [
        _trial(1, 0.70, bidirectional=True, units=8),
        _trial(2, 0.71, bidirectional=True, units=16, depth=2),
        _trial(3, 0.90, bidirectional=False, units=32),
        _trial(4, 0.91, bidirectional=False, units=64),
        _trial(5, 0.89, bidirectional=False, units=32, depth=3),
        _trial(6, 0.92, bidirectional=False, units=8, depth=2),
    ]
    row = reports.claims(reports.trials_frame(_study(trials)), "max", "val_accuracy").iloc[2]
    assert row["verdict"] == "not enough data" and "no 95% interval" in row["why"]
    one_pair = [_trial(1, 0.70, bidirectional=True), _trial(2, 0.90, bidirectional=False)]
    row = reports.claims(reports.trials_frame(_study(one_pair)), "max", "val_accuracy").iloc[2]
    assert row["verdict"] == "not enough data" and "1 matched configurations" in row["why"]


def test_a_regression_study_has_no_accuracy_claim_but_skill_over_the_baseline() -> None:
    trials, number = [], 0
    for units in (8, 16, 32):
        for cell, mse in (("lstm", 0.02), ("gru", 0.04)):
            number += 1
            trials.append(_trial(number, mse + units / 1e4, cell=cell, units=units))
    frame = reports.trials_frame(_study(trials, "min"))
    table = reports.claims(frame, "min", "val_loss", baseline=0.167)
    first = table.iloc[0]
    assert "accuracy" not in first["measure"] and "skill" in first["measure"]
    lstm = 1 - (0.02 + np.array([8, 16, 32]) / 1e4) / 0.167
    gru = 1 - (0.04 + np.array([8, 16, 32]) / 1e4) / 0.167
    assert first["estimate"] == pytest.approx(float(np.mean(gru / lstm)))
    without = reports.claims(frame, "min", "val_loss").iloc[0]
    assert without["verdict"] == "not enough data" and "no baseline" in without["why"]


def test_no_ratio_of_skills_where_the_cells_are_worse_than_the_baseline() -> None:
    # GRU has the lower error in every pair, but both are worse than the baseline: the
    # skills (-0.5, -0.44) ... give ratios near 0.87, "inside 85-90%", meaning nothing.
    trials, number = [], 0
    skills = [(-0.50, -0.44), (-0.40, -0.35), (-0.60, -0.52)]
    for units, (lstm, gru) in zip((8, 16, 32), skills, strict=True):
        for cell, skill in (("lstm", lstm), ("gru", gru)):
            number += 1
            trials.append(_trial(number, 0.167 * (1 - skill), cell=cell, units=units))
    table = reports.claims(reports.trials_frame(_study(trials, "min")), "min", "val_loss", 0.167)
    first = table.iloc[0]
    assert first["verdict"] == "not enough data"
    assert "in 3 of 3 matched configurations LSTM or GRU is not better" in first["why"]


def test_a_regression_skill_is_read_on_test_where_the_baseline_was_measured() -> None:
    trials, number = [], 0
    for units in (8, 16, 32):
        for cell, val, test in (("lstm", 0.02, 0.05), ("gru", 0.04, 0.06)):
            number += 1
            trials.append(_trial(number, val, cell=cell, units=units, test_loss=test))
    table = reports.claims(reports.trials_frame(_study(trials, "min")), "min", "val_loss", 0.2)
    first = table.iloc[0]
    assert "on test" in first["measure"]
    assert first["estimate"] == pytest.approx((1 - 0.06 / 0.2) / (1 - 0.05 / 0.2))


def test_memory_claim_needs_a_real_peak() -> None:
    study = _claims_study(0.87, 0.20, 0.40, memory_kind="rss_increase")
    row = reports.claims(reports.trials_frame(study), "max", "val_accuracy").iloc[1]
    assert row["verdict"] == "not measured on CPU" and "rss_increase" in row["why"]


def test_a_noisy_claim_with_an_interval_across_the_range_is_not_enough_data() -> None:
    trials = []
    for i, (lstm, gru) in enumerate([(0.8, 0.5), (0.8, 0.95), (0.8, 0.8)]):
        trials.append(_trial(2 * i + 1, lstm, cell="lstm", units=8 * (i + 1), n_params=400))
        trials.append(_trial(2 * i + 2, gru, cell="gru", units=8 * (i + 1), n_params=300))
    row = reports.claims(reports.trials_frame(_study(trials)), "max").iloc[0]
    assert row["ci_low"] < 0.85 < 0.90 < row["ci_high"]
    assert not 0.85 <= row["estimate"] <= 0.90
    assert row["verdict"] == "not enough data"


def test_missing_data_gives_a_report_that_says_so(tmp_path: Path) -> None:
    trials = [
        _trial(1, 0.5, cell="gru"),
        _trial(2, None, status="FAILED", cell="gru", tags={"failure": "diverged"}),
        _trial(3, None, status="KILLED", cell="gru"),
    ]
    report = reports.build_report(_study(trials))
    files = reports.write_report(report, tmp_path)
    text = (tmp_path / "report.md").read_text()
    assert "Gradient norms (grad_norm): not measured in this study." in text
    assert "Only one cell type finished: no comparison possible." in text
    assert "not enough data" in text and "fewer than 3 finished trials" in text
    assert "3 run, 1 finished, 1 failed (1 diverged), 1 interrupted" in text
    assert (tmp_path / "report.html").exists() and (tmp_path / "trials.csv") in files
    nothing = reports.build_report(_study([trials[1]]))
    reports.write_report(nothing, tmp_path / "none")
    assert "no trial finished" in (tmp_path / "none" / "report.md").read_text()


def test_gradient_section_reads_the_probe_metrics() -> None:
    history = {
        "grad_norm": ((0, 4.0), (1, 2.0), (2, 0.5)),
        "grad_norm_r1": ((0, 3.0), (1, 1.0), (2, 0.5)),
        "grad_input_early": ((0, 0.01), (1, 0.02), (2, 0.03)),
        "grad_input_late": ((0, 1.0), (1, 1.0), (2, 1.0)),
    }
    trials = [
        _trial(
            1,
            0.9,
            cell="lstm",
            clipping="norm",
            clip_threshold=1.0,
            histories=history,
            fit_seconds=100.0,
        ),
        _trial(2, 0.8, cell="gru", histories={"grad_norm": ((0, 2.0),)}, fit_seconds=100.0),
    ]
    trials[0].metrics["grad_probe_seconds"] = 2.0  # type: ignore[index]
    table = reports.gradient_health(_study(trials)).set_index("cell")
    assert table.loc["lstm", "clipped_share"] == pytest.approx(3 / 6)  # both repeats, > 1.0
    assert table.loc["lstm", "max_norm"] == 4.0
    assert table.loc["lstm", "early_late_ratio"] == pytest.approx(0.02)
    assert table.loc["lstm", "probe_percent"] == pytest.approx(2.0)
    assert math.isnan(table.loc["gru", "clipped_share"])  # no clipping: nothing to exceed


def test_the_early_late_ratio_keeps_one_way_last_step_readouts_apart() -> None:
    def trial(number: int, early: float, **params: object) -> StudyTrial:
        history = {"grad_norm": ((0, 1.0),), "grad_input_early": ((0, early),),
                   "grad_input_late": ((0, 1.0),)}  # fmt: skip
        return _trial(number, 0.5, cell="simple_rnn", histories=history, **params)

    # A SimpleRNN whose gradient vanishes (4e-5) beside its bidirectional and mean-readout
    # twins (near 1 whatever the recurrence does): pooled, the median read 0.53.
    trials = [
        trial(1, 4e-5),
        trial(2, 1.07, bidirectional=True),
        trial(3, 1.5, readout="mean"),
    ]
    table = reports.gradient_health(_study(trials)).set_index(["direction", "readout"])
    assert len(table) == 3
    assert table.loc[("one-way", "last"), "early_late_ratio"] == pytest.approx(4e-5)
    assert table.loc[("bidirectional", "last"), "early_late_ratio"] == pytest.approx(1.07)


# --- the real thing: a tiny search, read back from MLflow ---------------------------------------


def _space(path: Path) -> Path:
    path.write_text(
        textwrap.dedent(
            """\
            name: tiny_cmp
            dimensions:
              cell: [lstm, gru]
              units: [3, 4]
              learning_rate: 1e-2
              batch_size: 16
              epochs: 1
            """
        )
    )
    return path


@pytest.mark.e2e
def test_report_of_a_real_search_matches_trials_csv(
    store: str, tiny_task: Path, workdir: Path
) -> None:
    from mlflow import MlflowClient
    from scipy.stats import t as t_dist

    from workbench.search import make_search_config, run_search
    from workbench.spaces import load_space
    from workbench.tasks import load_task

    config = make_search_config(
        task=load_task(tiny_task),
        space=load_space(_space(workdir / "space.yaml")),
        tuner="grid",
        max_trials=4,
        seed=2,
        repeats=2,
        folds=1,
        experiment="tiny-report",
        tracking_uri=store,
    )
    run_search(config)
    result = CliRunner().invoke(
        main, ["report", "--experiment", "tiny-report", "--out", "rep", "--tracking-uri", store]
    )
    assert result.exit_code == 0, result.output
    assert "Report on 4 trials written to rep" in result.output
    out = workdir / "rep"
    html_text = (out / "report.html").read_text()
    assert html_text.count("<h2>") == 9 and "data:image/png;base64," in html_text
    assert html_text.index("1. Answer") < html_text.index("2. Overview")
    for name in ("report.md", "per_parameter.png", "pareto.png", "learning_curves.png"):
        assert (out / name).is_file()

    # The study: 2 cell types x 2 values of units x 2 repeats, one row per repeat.
    rows = pd.read_csv(out / "trials.csv")
    assert len(rows) == 8 and set(rows["cell"]) == {"lstm", "gru"}
    assert sorted(rows["repeat"]) == [0, 0, 0, 0, 1, 1, 1, 1]
    study = load_study(config.tracking_uri, "tiny-report")
    report = reports.build_report(study)
    table = report.frames["per_parameter"]
    for (cell, units), group in rows.groupby(["cell", "units"]):
        row = table[
            (table["parameter"] == "units")
            & (table["value"] == str(units))
            & (table["cell"] == cell)
        ].iloc[0]
        # One configuration per (cell, units): its two repeats averaged, no interval.
        assert row["n"] == 1 and row["mean"] == pytest.approx(group["score"].mean())
        assert np.isnan(row["ci_low"]) and np.isnan(row["ci_high"])
    means = rows.groupby(["cell", "units"])["score"].mean()
    # ... and those scores are the repeats' scores MLflow holds, not the report's own reading.
    client = MlflowClient(config.tracking_uri)
    experiment = client.get_experiment_by_name("tiny-report").experiment_id
    logged = client.search_runs([experiment], "tags.`workbench.role` = 'trial'")
    assert len(logged) == 4
    for run in logged:
        key = (run.data.params["cell"], int(run.data.params["units"]))
        repeats = [run.data.metrics["score_r0"], run.data.metrics["score_r1"]]
        assert means[key] == pytest.approx(np.mean(repeats))
    seeds = report.frames["seed_variance"].iloc[0]
    assert (seeds["configurations"], seeds["repeats"]) == (4, 8)
    within = rows.groupby(["cell", "units"])["score"].var(ddof=1).mean()  # balanced: MS_within
    assert seeds["sigma2_seed"] == pytest.approx(within)
    diffs = means["lstm"] - means["gru"]
    h2h = report.frames["head_to_head"].iloc[0]
    assert (h2h["comparison"], h2h["n"]) == ("paired", 2)
    assert h2h["mean_diff"] == pytest.approx(diffs.mean())
    half = t_dist.ppf(0.975, len(diffs) - 1) * diffs.std(ddof=1) / np.sqrt(len(diffs))
    assert (h2h["ci_low"], h2h["ci_high"]) == pytest.approx(
        (diffs.mean() - half, diffs.mean() + half)
    )

    # Logged on the search run, and the SQL reader agrees with the MLflow client's.
    logged = {f.path for f in client.list_artifacts(study.parent_run_id, "report")}
    assert {"report/report.html", "report/trials.csv"} <= logged
    note = client.get_run(study.parent_run_id).data.tags["mlflow.note.content"]
    pointer = "Report: report/report.html among this run's artifacts (workbench report)."
    assert note.endswith(pointer)
    via_client = _client_study_rows(config.tracking_uri, "tiny-report")
    sql = _sqlite_study_rows(
        Path(config.tracking_uri.removeprefix("sqlite:///")), config.tracking_uri, "tiny-report"
    )
    by_id = {r["run_id"]: r for r in via_client[1]}
    assert {r["run_id"] for r in sql[1]} == set(by_id)  # the same runs, none dropped
    for run in sql[1]:
        other = by_id[run["run_id"]]
        assert run["params"] == other["params"] and run["tags"] == other["tags"]
        assert run["metrics"] == pytest.approx(other["metrics"], nan_ok=True)
        if run["tags"].get("workbench.role") == "trial":
            assert run["histories"] == other["histories"]
    # Without histories (what the UI's links read): the same runs, no per-epoch calls.
    for rows in (
        _client_study_rows(config.tracking_uri, "tiny-report", histories=False),
        _sqlite_study_rows(
            Path(config.tracking_uri.removeprefix("sqlite:///")), config.tracking_uri,
            "tiny-report", histories=False,
        ),
    ):  # fmt: skip
        assert {r["run_id"] for r in rows[1]} == set(by_id)
        assert all(r["histories"] == {} for r in rows[1])
        assert any(by_id[r["run_id"]]["histories"] for r in rows[1])


def test_experiment_without_trials_and_unknown_experiment_are_one_line(store: str) -> None:
    from mlflow import MlflowClient

    from workbench.tracking import resolve_tracking_uri

    uri = resolve_tracking_uri(store)
    MlflowClient(uri).create_experiment("empty")
    with pytest.raises(WorkbenchError, match="'empty' has no trial runs to report on"):
        reports.make_report("empty", "rep", tracking_uri=uri)
    with pytest.raises(WorkbenchError, match=r"Unknown experiment 'nope'.*Expected one of: empty"):
        reports.make_report("nope", "rep", tracking_uri=uri)
    assert not Path("rep").exists()
    for number in range(12):  # the names listed are cut at 10: say how many more there are
        MlflowClient(uri).create_experiment(f"study-{number:02d}")
    with pytest.raises(WorkbenchError, match=r"Expected one of: empty, study-00, .*, study-08 "
                       r"and 3 more\. Received: --experiment nope"):
        reports.make_report("nope", "rep", tracking_uri=uri)  # fmt: skip


def test_expected_best_after_n_trials_matches_enumeration() -> None:
    from itertools import product

    scores = [1.0, 3.0, 2.0]
    trials = [_trial(i + 1, v, cell="gru", units=8 * (i + 1)) for i, v in enumerate(scores)]
    trials += [_trial(4, 5.0, cell="lstm")]
    curves = reports.expected_best(reports.trials_frame(_study(trials)), "max")
    gru = curves[curves["cell"] == "gru"].set_index("trials")["expected_best"]
    for n in (1, 2, 3):  # every draw of n trials with replacement, equally likely
        draws = [max(d) for d in product([1.0, 2.0, 3.0], repeat=n)]
        assert gru[n] == pytest.approx(np.mean(draws))
    assert gru[2] == pytest.approx(22 / 9)
    lowest = reports.expected_best(reports.trials_frame(_study(trials, "min")), "min")
    gru_min = lowest[lowest["cell"] == "gru"].set_index("trials")["expected_best"]
    assert gru_min[2] == pytest.approx(np.mean([min(d) for d in product([1, 2, 3], repeat=2)]))
    assert curves[curves["cell"] == "lstm"]["trials"].tolist() == [1]  # its own N only


def _baseline_study(test_losses: list[float], baseline: float) -> StudyRecord:
    trials = [
        _trial(
            i + 1,
            0.15 + i / 100,
            cell=("lstm", "gru")[i % 2],
            units=8 << i // 2,
            tags={},
            test_loss=loss,
        )
        for i, loss in enumerate(test_losses)
    ]
    study = _study(trials, "min")
    tags = {**study.parent_tags, "baseline": "always predict 1", "baseline_value": str(baseline)}
    return dataclasses.replace(study, parent_tags=tags)


def test_the_answer_says_first_when_the_best_trial_does_not_beat_the_baseline() -> None:
    study = _baseline_study([0.186, 0.19, 0.20, 0.21], baseline=0.184)
    report = reports.build_report(study)
    first = report.sections[0]
    assert first.title == "1. Answer"
    assert first.notes[0].startswith("**The best trial (1) does not beat the task's trivial")
    assert "0.186 against 0.184" in first.notes[0]
    good = reports.build_report(_baseline_study([0.01, 0.02, 0.03, 0.04], baseline=0.184))
    assert not good.sections[0].notes[0].startswith("**")
    assert any("beats the task's trivial baseline on test" in n for n in good.sections[0].notes)
    per_cell = [n for n in report.sections[0].notes if n.startswith("Each cell's best trial")]
    assert per_cell == [
        "Each cell's best trial on test (test_loss; baseline 0.184): lstm 0.186 (not better "
        "than the baseline), gru 0.19 (not better than the baseline)."
    ]


def test_the_baseline_verdict_rests_on_the_per_sample_interval() -> None:
    def study(low: float, high: float) -> StudyRecord:
        # The best trial: test MSE 0.1499 against 0.1625, a gap of one standard error.
        diff = {"baseline_diff": -0.0126, "baseline_diff_ci_low": low}
        trials = [
            _trial(1, 0.10, cell="lstm", units=8, test_loss=0.1499,
                   **diff, baseline_diff_ci_high=high),
            _trial(2, 0.20, cell="gru", units=8, test_loss=0.30, baseline_diff=0.14,
                   baseline_diff_ci_low=0.1, baseline_diff_ci_high=0.18),
        ]  # fmt: skip
        record = _study(trials, "min")
        tags = {**record.parent_tags, "baseline": "always predict 1", "baseline_value": "0.1625"}
        return dataclasses.replace(record, parent_tags=tags)

    # Two figures said "beats" (a verdict from a point estimate): the interval holds 0.
    notes = reports.build_report(study(-0.031, 0.0058)).sections[0].notes
    assert notes[0].startswith(
        "**The best trial (1) does not clearly beat the task's trivial baseline on test (the "
        "difference is within the noise)**: test_loss 0.1499 against 0.1625 (always predict 1); "
        "difference -0.0126, 95% CI [-0.031, 0.0058] over the test samples"
    ), notes[0]
    # Within the noise is not shown better; clearly worse is said so.
    listed = "lstm 0.1499 (not shown better than the baseline), gru 0.3 (worse than the baseline)"
    assert listed in " ".join(notes)
    notes = reports.build_report(study(-0.02, -0.005)).sections[0].notes
    assert not notes[0].startswith("**")
    (claim,) = [n for n in notes if "beats the task's trivial baseline on test" in n]
    assert "95% CI [-0.02, -0.005]" in claim


def test_a_trial_run_again_after_an_interruption_counts_once() -> None:
    from workbench.tracking.store import TRIAL_ID

    def run(number: int, score: float | None, status: str, failure: str = "") -> StudyTrial:
        tags = {TRIAL_ID: str(number - 1), **({"failure": failure} if failure else {})}
        seconds = 50.0 if failure == "interrupted" else 10.0
        made = _trial(
            number, score, status, cell="gru", units=8 * number, tags=tags, fit_seconds=seconds
        )
        return dataclasses.replace(made, run_id=f"run{number}-{status}")

    trials = [
        run(1, 0.8, "FINISHED"),
        run(2, None, "KILLED", "interrupted"),  # stopped by Ctrl-C, then run again
        run(2, 0.7, "FINISHED"),
        run(3, None, "KILLED", "worker_lost"),  # the chief recorded it failed
        run(4, None, "KILLED", "interrupted"),  # stopped for good
    ]
    report = reports.build_report(_study(trials))
    assert len(report.trials) == 4 and sorted(report.trials["trial"]) == [1, 2, 3, 4]
    overview = " ".join(report.sections[1].notes)
    # It counted runs: "5 run, 2 finished, 0 failed (0 diverged), 3 interrupted".
    assert "Trials: 4 run, 2 finished, 1 failed (0 diverged), 1 interrupted;" in overview
    assert "1 interrupted attempt(s) of trials run again on resume are left out" in overview
    # ... of the counts, not of the compute: what it trained before it stopped (it said 80).
    assert "Compute: 130.0 s of training in all trials (their interrupted attempts " \
        "included)" in overview
    # A run left RUNNING (a search killed with kill -9) is not a failed trial.
    report = reports.build_report(_study([*trials, run(5, None, "RUNNING")]))
    overview = " ".join(report.sections[1].notes)
    assert "Trials: 5 run, 2 finished, 1 failed (0 diverged), 1 interrupted, 1 running" in overview


def test_a_float32_tie_with_the_baseline_does_not_beat_it() -> None:
    # 600 of 1000 right, as Keras logs it (float32), against the majority class's 0.6.
    trials = [
        _trial(1, 0.61, cell="lstm", units=8, test_accuracy=0.6000000238418579),
        _trial(2, 0.60, cell="gru", units=8, test_accuracy=0.6000000238418579),
    ]
    study = _study(trials, "max")
    tags = {**study.parent_tags, "baseline": "majority class", "baseline_value": "0.6"}
    notes = reports.build_report(dataclasses.replace(study, parent_tags=tags)).sections[0].notes
    assert notes[0].startswith("**The best trial (1) does not beat the task's trivial baseline")
    assert "lstm 0.6 (not better than the baseline), gru 0.6 (not better" in " ".join(notes)


def test_the_answer_names_other_trials_that_beat_the_baseline_on_test() -> None:
    study = _baseline_study([0.19, 0.10, 0.20, 0.21], baseline=0.184)
    first = reports.build_report(study).sections[0].notes[0]
    assert first.startswith("**The best trial (1) does not beat the task's trivial baseline")
    assert "No model of this study" not in first
    assert "Other trials do on test (2), but validation did not pick them" in first


def test_hyperband_early_rounds_stay_out_of_the_best_trial_cost_and_seed_noise() -> None:
    trials = [  # trial 1 stopped after 1 epoch with the best score, so not comparable
        _trial(1, None, cell="lstm", units=8, epochs=1, repeats=[0.99, 0.50], epoch_seconds=1.0,
               histories={"val_accuracy": ((0, 0.99),), "grad_norm": ((0, 9.0),)}),
        _trial(2, None, cell="lstm", units=8, epochs=3, repeats=[0.80, 0.82], epoch_seconds=3.0,
               histories={"val_accuracy": ((0, 0.5), (1, 0.8)), "grad_norm": ((0, 1.0),)}),
        _trial(3, None, cell="gru", units=8, epochs=3, repeats=[0.70, 0.72], epoch_seconds=5.0),
    ]
    study = _study(trials, "max")
    study = dataclasses.replace(study, parent_tags={**study.parent_tags, "tuner": "hyperband"})
    report = reports.build_report(study)
    overview = " ".join(report.sections[1].notes)
    assert "Best: trial 2," in overview
    cost = report.frames["cost"].set_index("cell")
    assert cost.loc["lstm", "n"] == 1 and cost.loc["lstm", "epoch_seconds"] == 3.0
    seeds = report.frames["seed_variance"].iloc[0]
    assert seeds["configurations"] == 2  # trials 2 and 3; trial 1's wide spread left out
    assert seeds["sigma2_seed"] == pytest.approx(0.0002)
    assert set(report.frames["cost_runs"]["run_id"]) == {"run2", "run3"}  # the Pareto figure's
    curves = report.frames["learning_curves"]  # trial 1's one-epoch curve left out too
    assert curves[curves["cell"] == "lstm"]["n"].tolist() == [1, 1]
    assert report.frames["gradients"].set_index("cell").loc["lstm", "max_norm"] == 1.0
    from workbench.report.figures import _draw  # the figure beside the table: the same trials

    (line,) = _draw(report, "gradients").axes[0].get_lines()
    assert line.get_label() == "lstm" and line.get_ydata().tolist() == [1.0]  # not 9.0
    assert "compare the 2 trials trained to the full budget of 3 epochs" in " ".join(
        report.sections[0].notes
    )
    # Stopped before its last round: the space's budget (9) was never reached.
    params = {**study.parent_params, "max_epochs": "9"}
    cut = reports.build_report(dataclasses.replace(study, parent_params=params))
    note = " ".join(cut.sections[0].notes)
    assert "Hyperband stopped before any trial reached the full budget of 9 epochs" in note
    assert "compare the 2 trials trained longest (3 epochs)" in note
    # Stopped in its first round (every trial at the same low budget): said too.
    first_round = dataclasses.replace(
        study, trials=tuple(t for t in study.trials if t.params["epochs"] == "1"),
        parent_params=params,
    )  # fmt: skip
    note = " ".join(reports.build_report(first_round).sections[0].notes)
    assert "full budget of 9 epochs: scores, costs and seed noise compare the 1 trials" in note
    # A cell whose every trial an earlier round stopped is named: it was in no comparison.
    dropped = dataclasses.replace(
        study, trials=(*study.trials, _trial(4, 0.3, cell="simple_rnn", units=8, epochs=1))
    )
    note = " ".join(reports.build_report(dropped).sections[0].notes)
    assert "Not compared at all: simple_rnn (1 trial), every trial stopped in an earlier" in note


def test_peak_memory_compares_cells_only_as_a_gpu_allocator_measured_it() -> None:
    def trial(number: int, cell: str, memory: float, measure: str) -> StudyTrial:
        tags = {"memory_measure": measure}
        return _trial(number, 0.8, cell=cell, units=8, peak_memory_mb=memory, tags=tags)

    # On CPU the first trial's memory growth holds TensorFlow's start-up (LSTM ran first).
    cpu = reports.build_report(_study([trial(1, "lstm", 53.7, "rss_increase"),
                                       trial(2, "gru", 18.2, "rss_increase")]))  # fmt: skip
    assert cpu.frames["cost"]["peak_memory_mb"].isna().all()
    (note,) = [n for n in cpu.sections[5].notes if n.startswith("peak_memory_mb")]
    assert "left out where it is no GPU allocator's peak (here rss_increase)" in note
    assert cpu.trials["peak_memory_mb"].tolist() == [53.7, 18.2]  # kept per trial
    gpu = reports.build_report(_study([trial(1, "lstm", 40.0, "gpu_peak"),
                                       trial(2, "gru", 30.0, "gpu_peak")]))  # fmt: skip
    assert gpu.frames["cost"]["peak_memory_mb"].tolist() == [40.0, 30.0]
    assert not [n for n in gpu.sections[5].notes if n.startswith("peak_memory_mb")]


def test_the_pages_show_commands_as_code_and_say_what_trials_csv_rows_hold(
    tmp_path: Path,
) -> None:
    from workbench.report.pages import write_report

    unmatched = [_trial(1, 0.8, cell="lstm", units=16), _trial(2, 0.7, cell="gru", units=32)]
    write_report(reports.build_report(_study(unmatched)), tmp_path)
    page = (tmp_path / "report.html").read_text()
    # The suggested command showed with its backticks.
    assert "would: <code>workbench search --task t --space s --tuner grid" in page
    assert "`workbench search" not in page
    from workbench.report.pages import _inline

    # Code is code: a name with ** in it opened a <strong> across the </code>.
    assert _inline("**Run** `search --experiment a**b` then **look**") == (
        "<strong>Run</strong> <code>search --experiment a**b</code> then <strong>look</strong>"
    )
    md = (tmp_path / "report.md").read_text()
    assert "`score` is that repeat's; `trial_score` and every other measure" in md
    assert md.rstrip().endswith("add them up over one row per trial), the 3 PNG figures.")
    failed = [_trial(1, None, status="FAILED", tags={"failure": "diverged"})]
    write_report(reports.build_report(_study(failed)), tmp_path / "failed")
    assert (tmp_path / "failed" / "report.md").read_text().rstrip().endswith("; no figures.")


def test_a_one_epoch_study_draws_its_points() -> None:
    from workbench.report.figures import _draw

    trials = [
        _trial(k, 0.5 + k / 10, cell=cell, units=8 * k,
               histories={"val_accuracy": ((0, 0.5 + k / 10),), "grad_norm": ((0, float(k)),)})
        for k, cell in ((1, "lstm"), (2, "gru"), (3, "lstm"))
    ]  # fmt: skip
    report = reports.build_report(_study(trials))
    for name in ("learning_curves", "gradients"):
        ax = _draw(report, name).axes[0]
        # A line of one point drew nothing: the figures were their legends alone, under
        # ticks of -0.04 to 0.04.
        assert {line.get_marker() for line in ax.get_lines()} == {"o"}, name
        assert ax.get_xlim() == (-0.5, 0.5), name
        assert 0 in ax.get_xticks(), name


def test_a_later_hyperband_round_costs_its_earlier_rounds_too() -> None:
    trials = [  # trial 2 trains on from trial 1's weights, trial 3 from scratch
        _trial(1, 0.6, cell="lstm", units=8, epochs=1, fit_seconds=10.0, optimizer_steps=5,
               tags={"workbench.trial_id": "00"}),
        _trial(2, 0.8, cell="lstm", units=8, epochs=3, fit_seconds=20.0, optimizer_steps=10,
               tags={"workbench.trial_id": "01"}, **{"tuner/trial_id": "00"}),
        _trial(3, 0.7, cell="gru", units=8, epochs=3, fit_seconds=25.0, optimizer_steps=15,
               tags={"workbench.trial_id": "02"}),
    ]
    study = _study(trials, "max")
    study = dataclasses.replace(study, parent_tags={**study.parent_tags, "tuner": "hyperband"})
    report = reports.build_report(study)
    cost = report.frames["cost"].set_index("cell")
    assert cost.loc["lstm", "fit_seconds"] == 30.0  # 20 s of its own round, 10 s before
    assert cost.loc["gru", "fit_seconds"] == 25.0
    # Trial 2 (30 s) no longer looks cheaper than trial 3 (25 s): both on the front.
    assert set(report.frames["pareto"]["trial"]) == {2, 3}
    # The study's compute counts each round once.
    assert "Compute: 55.0 s of training in all trials" in " ".join(report.sections[1].notes)
    assert "fit_seconds include the earlier rounds" in " ".join(report.sections[5].notes)
    rows = reports.trials_frame(study).set_index("trial")
    assert rows.loc[2, "optimizer_steps"] == 15 and rows.loc[2, "round_fit_seconds"] == 20.0


def test_a_later_hyperband_rounds_curve_starts_with_its_earlier_rounds_epochs() -> None:
    trials = [  # trial 2 trains on from trial 1's weights: it logged epochs 1-2 only
        _trial(1, 0.6, cell="lstm", units=8, epochs=1, tags={"workbench.trial_id": "00"},
               histories={"val_accuracy": ((0, 0.6),)}),
        _trial(2, 0.8, cell="lstm", units=8, epochs=3, tags={"workbench.trial_id": "01"},
               histories={"val_accuracy": ((1, 0.7), (2, 0.8))}, **{"tuner/trial_id": "00"}),
    ]  # fmt: skip
    study = _study(trials, "max")
    study = dataclasses.replace(study, parent_tags={**study.parent_tags, "tuner": "hyperband"})
    curves = reports.build_report(study).frames["learning_curves"]
    # It started at epoch 1: the first round's epoch was missing from the full-budget curve.
    assert curves["epoch"].tolist() == [0, 1, 2]
    assert curves["median"].tolist() == [0.6, 0.7, 0.8]


def test_a_best_trial_under_the_baseline_comes_with_the_likely_reasons() -> None:
    trials = [
        _trial(1, 0.19, cell="lstm", units=8, test_loss=0.19, optimizer_steps=40),
        _trial(2, 0.20, cell="gru", units=8, test_loss=0.2, optimizer_steps=40),
        _trial(3, None, status="FAILED", cell="gru", units=16, tags={"failure": "diverged"}),
    ]
    study = _study(trials, "min")
    tags = {**study.parent_tags, "baseline_value": "0.184", "baseline": "always predict 1"}
    params = {**study.parent_params, "val_samples": "16", "folds": "1"}
    study = dataclasses.replace(study, parent_tags=tags, parent_params=params)
    first = reports.build_report(study).sections[0].notes[0]
    assert "does not beat the task's trivial baseline" in first
    assert "too few updates (at most 40 optimizer steps" in first
    assert first.count("raise the space's epochs or lower its batch size") == 1
    # 64 samples: every batch size above 8 trained at 8; a smaller one in the space would
    # change nothing, more samples would.
    capped = [dataclasses.replace(t, metrics={**t.metrics, "batch_size_used": 8.0})
              for t in trials]  # fmt: skip
    study = dataclasses.replace(_study(capped, "min"), parent_tags=tags, parent_params=params)
    first = reports.build_report(study).sections[0].notes[0]
    assert "raise the space's epochs or give the task more training samples: the batch size " \
        "was already capped at 8, the training samples / 8 rounded up)" in first
    assert "1 of 3 trials diverged" in first
    assert "a validation part of 16 samples picked the best trial" in first


def test_an_unsettled_matched_study_asks_for_configurations_and_says_what_seeds_can_do() -> None:
    trials = [
        _trial(1, None, cell="lstm", units=16, repeats=[0.80, 0.82]),
        _trial(2, None, cell="gru", units=16, repeats=[0.83, 0.81]),
        _trial(3, None, cell="lstm", units=32, repeats=[0.85, 0.84]),
        _trial(4, None, cell="gru", units=32, repeats=[0.82, 0.86]),
    ]
    notes = reports.build_report(_study(trials)).sections[0].notes
    (advice,) = [n for n in notes if n.startswith("This study cannot settle")]
    assert "at most 2 configurations per pair" in advice
    # More seeds take seed noise out of each configuration's difference, no more: not
    # "will not settle it" (false where seed noise is most of the spread).
    assert "more seeds narrow the interval only as far as seed noise spreads" in advice
    assert "will not settle" not in advice and "--repeats" not in advice
    unmatched = [_trial(1, 0.8, cell="lstm", units=16), _trial(2, 0.7, cell="gru", units=32)]
    notes = reports.build_report(_study(unmatched)).sections[0].notes
    (advice,) = [n for n in notes if n.startswith("This study cannot settle")]
    assert "no two cells met on 2 or more matched configurations" in advice
    assert "--tuner grid --repeats 3" in advice
    # The search that would settle it runs the same task: the loader options it ran with
    # that its task file does not set so (n_train=64 is another task than adding's 1000).
    study = _study(unmatched)
    options = {"length": 20, "n_train": 64, "n_val": 250, "n_test": 250, "seed": 0}
    tags = {**study.parent_tags, "task": "adding", "task_options": json.dumps(options)}
    notes = reports.build_report(dataclasses.replace(study, parent_tags=tags)).sections[0].notes
    (advice,) = [n for n in notes if n.startswith("This study cannot settle")]
    assert "`workbench search --task adding --task-option length=20 --task-option n_train=64 " \
        "--space s --tuner grid" in advice


def test_diverged_trials_left_out_of_the_comparison_are_said_per_cell() -> None:
    trials, number = [], 0
    for units in (8, 16, 32, 64):
        for cell, score, rate in (
            ("lstm", 0.80, "0.001"), ("gru", 0.81, "0.001"), ("lstm", None, "0.01"),
            ("gru", 0.88, "0.01"),
        ):  # fmt: skip
            number += 1
            failed = {"status": "FAILED", "tags": {"failure": "diverged"}} if score is None else {}
            value = None if score is None else score + units / 1000 + number / 10000
            trials.append(
                _trial(number, value, cell=cell, units=units, learning_rate=rate, **failed)
            )
    notes = reports.build_report(_study(trials)).sections[0].notes
    (line,) = [n for n in notes if n.startswith("Not in these comparisons")]
    assert "lstm diverged in 4 of its 8 trials; gru diverged in 0 of its 8 trials" in line
    # A trial still running (a report during the search) is not a failure.
    running = [*trials[:-1], dataclasses.replace(trials[-1], status="RUNNING", metrics={})]
    notes = reports.build_report(_study(running)).sections[0].notes
    (line,) = [n for n in notes if n.startswith("Not in these comparisons")]
    assert "failed" not in line
    # ... but the search is not over (a kill -9 left it RUNNING): the answer says so.
    assert "**This search is not complete**: 1 trial(s) RUNNING (still training" in " ".join(
        notes
    )
    complete = " ".join(reports.build_report(_study(trials)).sections[0].notes)
    assert "not complete" not in complete
    # One trial interrupted twice (Ctrl-C'd, resumed, Ctrl-C'd): one trial, its latest try.
    first, second = (
        _trial(1, None, status="KILLED", cell="lstm", tags={"workbench.trial_id": "00"})
        for _ in range(2)
    )
    second = dataclasses.replace(second, run_id="run1b", start_time=5.0)
    report = reports.build_report(_study([first, second]))
    assert report.trials["run_id"].tolist() == ["run1b"]
    assert "1 interrupted" in " ".join(report.sections[0].notes)


def test_without_a_test_part_the_baseline_is_read_on_validation_first() -> None:
    study = _baseline_study([math.nan] * 4, baseline=0.1)  # val_loss 0.15-0.18, no test
    first = reports.build_report(study).sections[0].notes[0]
    assert first.startswith(
        "**The best trial (1) scores worse than the task's trivial baseline on validation** "
        "(two figures: no test part to judge it on, and validation also chose it, so this reads "
        "optimistic): 0.15 against 0.1"
    )
    # A majority-class model logs 0.6000000238 (float32) against 0.6: the same, not worse.
    tied = reports.build_report(_baseline_study([math.nan] * 4, baseline=float(np.float32(0.15))))
    assert tied.sections[0].notes[0].startswith(
        "**The best trial (1) scores the same as the task's trivial baseline on validation**"
    ), tied.sections[0].notes[0]
    beaten = reports.build_report(_baseline_study([math.nan] * 4, baseline=0.3))
    assert any(  # two figures: no verdict ("beats"), the scores said
        n.startswith("The best trial (1) scores better than the task's trivial baseline on val")
        for n in beaten.sections[0].notes
    )


def test_cells_that_score_the_same_everywhere_are_said_identical_not_unsettled() -> None:
    trials = [
        _trial(i + 1, 0.6, cell=cell, units=units)
        for i, (cell, units) in enumerate(
            (c, u) for u in (8, 16, 32) for c in ("lstm", "gru")
        )
    ]
    notes = " ".join(reports.build_report(_study(trials)).sections[0].notes)
    assert "lstm vs gru on validation val_accuracy" in notes
    assert "the same score in each of the 3 matched configurations" in notes
    assert "cannot settle" not in notes


def test_no_ratio_of_negative_skills_for_the_bidirectional_claim() -> None:
    trials = [
        _trial(i + 1, 0.4 - 0.04 * bi, cell=cell, units=units, bidirectional=bool(bi),
               test_loss=0.4 - 0.04 * bi + i / 1000)
        for i, (cell, units, bi) in enumerate(
            (c, u, b) for u in (8, 16) for c in ("lstm", "gru") for b in (0, 1)
        )
    ]  # fmt: skip
    study = _study(trials, "min")
    tags = {**study.parent_tags, "baseline_value": "0.2", "baseline": "mean"}
    study = dataclasses.replace(study, parent_tags=tags)
    row = reports.build_report(study).frames["claims"].iloc[2]
    assert row["verdict"] == "not enough data"
    assert "the bidirectional or the one-way model is not better than the task's baseline" in (
        row["why"]
    )
    # No bidirectional trial at all: that is the reason, not the one-way trials' skill.
    one_way = [t for t in study.trials if t.params["bidirectional"] == "False"]
    row = reports.build_report(dataclasses.replace(study, trials=tuple(one_way)))
    why = row.frames["claims"].iloc[2]["why"]
    assert "not better than the task's baseline" not in why, why


def test_too_few_updates_counts_one_models_training_not_its_repeats_and_folds() -> None:
    trials = [
        _trial(1, 0.19, cell="lstm", units=8, test_loss=0.19, optimizer_steps=375),
        _trial(2, 0.20, cell="gru", units=8, test_loss=0.2, optimizer_steps=375),
    ]
    study = _study(trials, "min")
    tags = {**study.parent_tags, "baseline_value": "0.184", "baseline": "always predict 1"}
    params = {**study.parent_params, "folds": "5"}  # 5 folds x 3 repeats: 25 steps each
    trials = [dataclasses.replace(t, params={**t.params, "repeats": "3"}) for t in trials]
    study = dataclasses.replace(study, trials=tuple(trials), parent_tags=tags, parent_params=params)
    first = reports.build_report(study).sections[0].notes[0]
    assert "too few updates (at most 25 optimizer steps in a model's training" in first


def test_the_expected_best_table_compares_cells_at_equal_n() -> None:
    scores = {"lstm": [0.70, 0.75, 0.80, 0.90], "gru": [0.78, 0.80]}
    trials = [
        _trial(i + 1, score, cell=cell, units=8 * (j + 1))
        for i, (cell, j, score) in enumerate(
            (c, j, v) for c, values in scores.items() for j, v in enumerate(values)
        )
    ]
    report = reports.build_report(_study(trials))
    (table,) = [t for title, t in report.sections[3].tables if title.startswith("Expected best")]
    row = table.set_index("cell")
    # lstm at n = 2 from its 4 trials: sum_i v_i ((i/4)^2 - ((i-1)/4)^2) = 0.828125
    assert row.loc["lstm", "expected best at n = 2 (equal)"] == pytest.approx(0.828125)
    assert row.loc["lstm", "trials"] == 4 and row.loc["gru", "trials"] == 2
    assert row.loc["lstm", "expected best at its own trials"] > 0.828125


def _against_baseline(number: int, score: float, diff: float, p: float, **params) -> StudyTrial:
    # A trial whose test loss is `diff` from the baseline's 0.5 with two-sided p-value `p`.
    half = abs(diff) / max(stats.norm.isf(p / 2), 1e-9) * 1.959964
    return _trial(number, score, cell=params.pop("cell", "lstm"), test_loss=0.5 + diff,
                  baseline_diff=diff, baseline_diff_ci_low=diff - half,
                  baseline_diff_ci_high=diff + half, baseline_p=p, **params)  # fmt: skip


def _with_baseline(trials: list[StudyTrial]) -> StudyRecord:
    record = _study(trials, "min")
    tags = {**record.parent_tags, "baseline": "always predict 0", "baseline_value": "0.5"}
    return dataclasses.replace(record, parent_tags=tags)


def test_other_trials_beat_the_baseline_only_after_holms_correction_over_the_trials() -> None:
    # The best trial is within the noise; 20 others each clear 95% alone (p = 0.03), as some
    # of many trials do by chance: after Holm's correction over the 21 none does.
    trials = [_against_baseline(1, 0.1, -0.01, 0.4, units=8)]
    trials += [_against_baseline(k, 0.2, -0.02, 0.03, units=8 * k) for k in range(2, 22)]
    notes = reports.build_report(_with_baseline(trials)).sections[0].notes
    assert notes[0].startswith("**The best trial (1) does not clearly beat"), notes[0]
    assert notes[0].endswith(
        "No model of this study is shown to beat the trivial predictor on test (Holm's "
        "correction over the 21 trials compared)."
    ), notes[0]
    trials.append(_against_baseline(22, 0.3, -0.2, 1e-6, units=7))
    notes = reports.build_report(_with_baseline(trials)).sections[0].notes
    assert "Other trials do on test (22; Holm's correction over the 22 trials compared)" in (
        notes[0]
    )


def test_a_model_that_scores_as_the_baseline_on_every_sample_is_said_so() -> None:
    trials = [_trial(1, 0.1, test_loss=0.5, baseline_diff=0.0, baseline_diff_ci_low=0.0,
                     baseline_diff_ci_high=0.0, baseline_p=1.0)]  # fmt: skip
    notes = reports.build_report(_with_baseline(trials)).sections[0].notes
    assert notes[0].startswith(
        "**The best trial (1) does not beat the task's trivial baseline on test (it scores the "
        "same as the baseline on every test sample)**"
    ), notes[0]


def test_a_pair_settled_on_validation_is_not_said_open_because_of_the_test_part() -> None:
    # Unmatched trials: Welch's t-test tells lstm from gru on validation (the pair stays
    # open: the comparison is weaker), and so does the test part. The advice must not say
    # validation does not tell them apart.
    trials = [
        _trial(k, 0.10 + k / 100, cell="lstm", units=8 * k, test_loss=0.10 + k / 100)
        for k in (1, 2, 3, 4)
    ] + [
        _trial(k, 0.50 + k / 100, cell="gru", units=8 * k, test_loss=0.50 + k / 100)
        for k in (5, 6, 7, 8)
    ]
    notes = reports.build_report(_study(trials, "min")).sections[0].notes
    text = " ".join(notes)
    assert "lstm beats gru on validation" in text, text
    assert "validation, which the search chose by, does not" not in text, text


def test_the_search_wall_time_leaves_out_a_resumes_pause() -> None:
    trials = [_trial(1, 0.8, cell="lstm"), _trial(2, 0.7, cell="gru")]
    spent = {"search_seconds": 12.5}
    record = dataclasses.replace(
        _study(trials), parent_start=1000.0, parent_end=1100.0, parent_metrics=spent
    )
    overview = " ".join(reports.build_report(record).sections[1].notes)
    assert "search wall time 12.5 s." in overview  # not the run's 100 s from start to end
    before = dataclasses.replace(_study(trials), parent_start=1000.0, parent_end=1100.0)
    overview = " ".join(reports.build_report(before).sections[1].notes)
    assert "search wall time 100.0 s." in overview  # a search from before: start to end


def test_trials_whose_test_figures_are_their_best_fits_are_left_out_of_the_test_comparison() -> (
    None
):
    # Logged before 2026-12-07 with repeats: test_loss was the best repeat's alone. Beside
    # trials logging the mean of their repeats (test_models present), it is left out.
    old = [
        _trial(k, None, cell=cell, units=8, repeats=[0.3, 0.2 + k / 100], test_loss=0.1 + k / 100)
        for k, cell in ((1, "lstm"), (2, "gru"))
    ]
    new = [
        _trial(k, None, cell=cell, units=units, repeats=[0.3, 0.2 + k / 100],
               test_loss=0.2 + k / 100 + units / 1000, test_models=2)
        for k, cell, units in ((3, "lstm", 16), (4, "gru", 16), (5, "lstm", 32), (6, "gru", 32))
    ]  # fmt: skip
    for trial in old + new:
        trial.params["repeats"] = "2"
    report = reports.build_report(_study(old + new, "min"))
    notes = " ".join(note for section in report.sections for note in section.notes)
    assert "2 trial(s) logged before 2026-12-07 with repeats or folds have the test figures" in (
        notes
    ), notes
    test = report.frames["head_to_head_test"].iloc[0]
    assert test["n"] == 2  # the matched pairs of new trials, not the old one


def test_a_trial_without_a_readable_comparison_is_no_crash() -> None:
    # A trial whose test outputs were not finite: a p-value of 0 beside no interval (as
    # logged by one version) reads as no comparison.
    trials = [
        _trial(1, 0.1, test_loss=0.6, baseline_diff=0.1, baseline_diff_ci_low=0.0,
               baseline_diff_ci_high=0.2, baseline_p=0.2),
        _trial(2, 0.2, units=8, test_loss=math.inf, baseline_diff=math.nan,
               baseline_diff_ci_low=math.nan, baseline_diff_ci_high=math.nan, baseline_p=0.0),
    ]  # fmt: skip
    notes = reports.build_report(_with_baseline(trials)).sections[0].notes
    # Its test loss is above the baseline's (0.6 against 0.5), the interval holds 0: a
    # score on the baseline's wrong side is said so, first, even within the noise.
    assert notes[0].startswith(
        "**The best trial (1) scores worse than the task's trivial baseline on test (within the "
        "noise: not shown worse)**: test_loss 0.6 against 0.5"
    ), notes[0]
