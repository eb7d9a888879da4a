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
            metrics={"fit_seconds": 1.5}, worker="", reused=False,
        )  # fmt: skip
    )
    (line,) = out.getvalue().splitlines()  # one line, however long: copyable from a log
    assert line.startswith("Trial 3/12 lstm depth=1 units=64")
    assert "[rnn_mode, rnn_input_mode]: 2, 0 [/x] " in line and line.endswith("(1.5 s)")
