"""The console reporter: one line per trial, printed as the library said it."""

from __future__ import annotations

import io
from types import SimpleNamespace

from workbench.console import ConsoleReporter


def test_a_failure_is_printed_as_it_is_on_one_line() -> None:
    reporter = ConsoleReporter()
    out = io.StringIO()
    reporter.console.file = out  # not a terminal: no live counter, as in a log file
    reporter._objective, reporter._total = "val_loss", 12
    # A cuDNN error lists its settings in brackets; "[/x]" would be a closing markup tag.
    failure = "InternalError: model config: [rnn_mode, rnn_input_mode]: 2, 0 [/x] " + "z" * 120
    values = {"cell": "lstm", "depth": 1, "units": 64, "learning_rate": 0.003}
    reporter.trial_ended(
        SimpleNamespace(
            number=3, status="failed", score=None, failure=failure, values=values,
            metrics={"fit_seconds": 1.5}, worker="", reused=False, late=False,
        )  # fmt: skip
    )
    (line,) = out.getvalue().splitlines()  # one line, however long: copyable from a log
    assert line.startswith("Trial 3/12 lstm depth=1 units=64")
    assert "[rnn_mode, rnn_input_mode]: 2, 0 [/x] " in line and line.endswith("(1.5 s)")


def test_a_best_trial_under_the_baseline_is_said_so_before_its_scores() -> None:
    from rich.console import Console

    from workbench.console import print_search_result
    from workbench.search.config import SearchResult, TrialResult

    best = TrialResult("00", 1, {"cell": "lstm"}, "completed", 1.18, {"test_loss": 1.107}, "r1")
    verdict = "**The best trial (1) does not beat the task's trivial baseline on test**: ..."
    result = SearchResult(
        "c1", "p", "sqlite:///m.db", "val_loss", "min", (best,), best, False, 1,
        answer=(verdict, "lstm vs gru: cannot test."),
    )  # fmt: skip
    out = io.StringIO()
    print_search_result(Console(file=out, width=200), result)
    text = out.getvalue()
    # The scores came first, and the verdict on them a table later.
    assert text.index("does not beat the task's trivial baseline") < text.index("Best trial 1")
    assert text.index("Best trial 1") < text.index("test_loss")


def test_a_trial_finished_too_late_for_the_study_says_so() -> None:
    reporter = ConsoleReporter()
    out = io.StringIO()
    reporter.console.file = out
    reporter._objective, reporter._total = "val_loss", 2
    reporter.trial_ended(
        SimpleNamespace(
            number=1, status="completed", score=0.175, failure=None, values={"cell": "lstm"},
            metrics={"fit_seconds": 3.0}, worker="w1", reused=False, late=True,
        )  # fmt: skip
    )
    (line,) = out.getvalue().splitlines()
    # It read as a completed trial, which the study had recorded failed (worker lost).
    assert line.startswith("Trial 1/2 [w1] lstm ")
    assert " -> val_loss 0.175 (3.0 s); too late for the study" in line
    assert "the chief had given this trial up" in line
