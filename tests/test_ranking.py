"""Cells ranked over tasks (report/ranking.py): against scipy and Demsar (2006)'s tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from workbench.errors import WorkbenchError
from workbench.report.ranking import (
    average_ranks,
    friedman,
    nemenyi_critical_difference,
    nemenyi_q,
    pairwise_wilcoxon,
    ranks,
)

# Accuracies (higher is better) of three cells on five tasks; the last task is a tie.
_TABLE = pd.DataFrame(
    {
        "simple_rnn": [0.60, 0.70, 0.55, 0.80, 0.90],
        "lstm": [0.90, 0.85, 0.75, 0.82, 0.90],
        "gru": [0.88, 0.86, 0.80, 0.79, 0.95],
    },
    index=["a", "b", "c", "d", "e"],
)


def test_ranks_by_hand_with_shared_ranks_for_ties() -> None:
    r = ranks(_TABLE, "max")
    assert r.loc["a"].tolist() == [3.0, 1.0, 2.0]
    assert r.loc["e"].tolist() == [2.5, 2.5, 1.0]  # simple_rnn and lstm tie at 0.90
    means = average_ranks(_TABLE, "max")
    assert means.index.tolist() == ["gru", "lstm", "simple_rnn"]
    assert means["simple_rnn"] == pytest.approx((3 + 3 + 3 + 2 + 2.5) / 5)
    assert means["gru"] == pytest.approx((2 + 1 + 1 + 3 + 1) / 5)
    # An error to minimise: the order turns around.
    assert average_ranks(-_TABLE, "min").index.tolist() == means.index.tolist()


def test_friedman_matches_scipy_and_the_textbook_formula() -> None:
    result = friedman(_TABLE, "max")
    expected = stats.friedmanchisquare(*(_TABLE[c] for c in _TABLE.columns))
    assert result.statistic == pytest.approx(expected.statistic)
    assert result.p_value == pytest.approx(expected.pvalue)
    assert (result.tasks_used, result.cells) == (5, 3)
    # Without ties: chi2 = 12 N / (k (k + 1)) * sum(R_j^2) - 3 N (k + 1).
    no_ties = _TABLE.drop(index="e")
    n, k = no_ties.shape
    sums = ranks(no_ties, "max").sum(axis=0)
    textbook = 12 / (n * k * (k + 1)) * float((sums**2).sum()) - 3 * n * (k + 1)
    assert friedman(no_ties, "max").statistic == pytest.approx(textbook)
    # A task without a score for every cell is left out; two cells cannot be tested.
    gap = _TABLE.copy()
    gap.loc["a", "gru"] = np.nan
    assert friedman(gap, "max").tasks_used == 4
    assert friedman(_TABLE[["lstm", "gru"]], "max") is None


def test_nemenyi_critical_values_are_demsars() -> None:
    # Demsar 2006, table 5(a), alpha = 0.05.
    for cells, q in {2: 1.960, 3: 2.343, 4: 2.569, 5: 2.728, 6: 2.850, 10: 3.164}.items():
        assert nemenyi_q(cells) == pytest.approx(q, abs=1e-3)
    # His worked example: 4 classifiers on 14 data sets, CD = 1.25.
    assert nemenyi_critical_difference(4, 14) == pytest.approx(1.25, abs=0.01)
    with pytest.raises(WorkbenchError, match="at least 2 cells"):
        nemenyi_q(1)


def test_pairwise_wilcoxon_counts_wins_and_holm_corrects() -> None:
    pairs = {(p.first, p.second): p for p in pairwise_wilcoxon(_TABLE, "max")}
    lstm_gru = pairs[("lstm", "gru")]
    assert (lstm_gru.wins, lstm_gru.ties, lstm_gru.losses) == (2, 0, 3)
    rnn_lstm = pairs[("simple_rnn", "lstm")]
    assert (rnn_lstm.wins, rnn_lstm.ties, rnn_lstm.losses) == (0, 1, 4)
    raw = {
        key: stats.wilcoxon(
            np.array(_TABLE[key[0]] - _TABLE[key[1]])[
                np.array(_TABLE[key[0]] - _TABLE[key[1]]) != 0
            ]
        ).pvalue
        for key in pairs
    }
    for key, pair in pairs.items():
        assert pair.p_value == pytest.approx(raw[key])
    # Holm: the smallest p times 3, the next times 2 (never below the one before), the last.
    ordered = sorted(raw.values())
    holm = [min(1, 3 * ordered[0])]
    holm.append(max(holm[0], min(1, 2 * ordered[1])))
    holm.append(max(holm[1], min(1, ordered[2])))
    assert sorted(p.p_holm for p in pairs.values()) == pytest.approx(holm)


def test_the_critical_difference_diagram_is_drawn(tmp_path) -> None:  # noqa: ANN001
    from workbench.report.figures import draw_critical_difference

    path = tmp_path / "cd.png"
    draw_critical_difference(average_ranks(_TABLE, "max"), nemenyi_critical_difference(3, 5), path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 2000


def test_tasks_scored_in_different_units_are_compared_by_the_sign_test() -> None:
    units = {"a": "val_accuracy", "b": "val_accuracy", "c": "val_loss", "d": "val_accuracy"}
    units["e"] = "val_accuracy"
    pairs = {(p.first, p.second): p for p in pairwise_wilcoxon(_TABLE, "max", units)}
    lstm_gru = pairs[("lstm", "gru")]
    assert lstm_gru.test == "sign"
    assert lstm_gru.p_value == pytest.approx(stats.binomtest(2, 5).pvalue)  # 2 wins, 3 losses
    assert pairwise_wilcoxon(_TABLE, "max")[0].test == "Wilcoxon"
    # Decided per pair: without task c (the MSE task) a pair's differences are all accuracy.
    partial = _TABLE.copy()
    partial.loc["c", "simple_rnn"] = float("nan")
    pairs = {(p.first, p.second): p for p in pairwise_wilcoxon(partial, "max", units)}
    assert pairs[("simple_rnn", "lstm")].test == "Wilcoxon"
    assert pairs[("lstm", "gru")].test == "sign"
