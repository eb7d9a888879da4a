"""Console: how results and progress look on the terminal (rich)."""

from __future__ import annotations

import shlex
import time
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from workbench.tracking import resolve_tracking_uri, served_ui


def format_values(values: dict[str, Any]) -> str:
    """``cell=gru depth=2 bi units=16 clip=norm@1 lr=0.0031 ...`` for one line of output."""
    parts = [f"{values.get('cell')}", f"depth={values.get('depth')}"]
    if values.get("bidirectional"):
        parts.append("bidirectional")
    parts.append(f"units={values.get('units')}")
    clipping = values.get("clipping")
    if clipping and clipping != "none":
        parts.append(f"clip={clipping}@{values.get('clip_threshold'):g}")
    else:
        parts.append("clip=none")
    lr = values.get("learning_rate")
    if lr is not None:
        parts.append(f"lr={lr:.3g}")
    for key in ("dropout", "batch_size", "epochs"):
        if values.get(key) is not None:
            parts.append(f"{key}={values[key]}")
    return " ".join(parts)


class ConsoleReporter:
    """Prints one line per trial as it ends, and a live epoch counter while it trains."""

    def __init__(self, console: Console | None = None) -> None:
        # soft_wrap: a line longer than the terminal (or anything, piped into a log) stays one
        # line, so commands and URIs in it can be copied.
        self.console = console or Console(highlight=False, soft_wrap=True)
        self._status: Any = None
        self._t0 = 0.0
        self._objective = ""
        self._number = 0
        self._total = 0

    def __enter__(self) -> ConsoleReporter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Stop the live counter however the search ended (an interrupt, a failure): the
        terminal gets its cursor back."""
        if self._status is not None:
            self._status.stop()
            self._status = None

    def search_started(self, config: Any, data: Any, resumed: bool, done_before: int) -> None:
        objective, direction = data.objective
        self._total = config.max_trials
        self._objective = objective
        baseline = f"; baseline {data.baseline.description}" if data.baseline else ""
        self.console.print(
            f"[bold]Study {escape(config.experiment)}[/]: task {escape(data.name)} "
            f"({data.problem}, train/val/test {data.sizes()}{escape(baseline)})"
        )
        self.console.print(
            f"Space {escape(config.space.name)}, tuner {config.tuner}, {config.max_trials} "
            f"trials, objective {objective} ({direction}), seed {config.seed}"
        )
        for note in (*config.notes, *data.notes):
            self.console.print(f"[yellow]Note:[/] {escape(note)}")
        if resumed:
            more, asked = "", config.max_trials
            if done_before >= asked and config.tuner != "hyperband":  # its budget decides
                size = config.space.grid_size or 0
                more = (
                    " Every configuration of the grid is tried."
                    if config.tuner == "grid" and asked >= size
                    else f" --max-trials {asked} asks for no more: raise it to run more."
                )
            self.console.print(
                f"[yellow]Resuming:[/] {done_before} trial(s) already done; they are not run "
                f"again.{more}"
            )

    def trial_started(self, number: int, total: int, values: dict[str, Any]) -> None:
        self._number, self._total = number, total
        self._t0 = time.perf_counter()
        if self.console.is_terminal:
            self._status = self.console.status(
                f"Trial {number}/{total} {format_values(values)}: building"
            )
            self._status.start()

    def epoch_ended(self, epoch: int, epochs: int, metrics: dict[str, float]) -> None:
        if self._status is not None:
            value = metrics.get(self._objective)
            shown = f"{self._objective} {value:.4g}" if value is not None else ""
            self._status.update(
                f"Trial {self._number}/{self._total}: epoch {epoch + 1}/{epochs} {shown}"
            )

    def worker_joining(self, address: str, seconds: float) -> None:
        self.console.print(
            f"Joining the chief at {escape(address)} (waiting up to {seconds:g} s for it)..."
        )

    def chief_silent(self, address: str, seconds: float | None) -> None:
        if seconds is None:
            self.console.print(f"The chief at {escape(address)} answers again.")
            return
        self.console.print(
            f"The chief at {escape(address)} has not answered for {seconds:.0f} s: this worker "
            "goes on with its trial and waits for the chief (started again, it takes the "
            "worker back; Ctrl-C stops the worker)."
        )

    def chief_started(self, address: str, local_workers: int, logs: str = "") -> None:
        if local_workers:
            self.console.print(
                f"Chief on {escape(address)}: {local_workers} local workers run the trials "
                f"(their output: {escape(logs or '<state folder>/workers')}/).",
                soft_wrap=True,
            )
        else:
            self.console.print(f"Chief listening on {escape(address)}. Start each worker with:")
            self.console.print(f"  workbench worker --chief {address}", markup=False)
            self.console.print(
                "(--worker-id NAME when one host runs several; the same id gets its trial back)"
            )

    def trial_requeued(self, number: int, worker: str) -> None:
        self.console.print(
            f"Trial {number}/{self._total} {escape(f'[{worker}]')} back in the queue: its worker "
            "stopped before it finished (Ctrl-C or SIGTERM); the next worker runs it again."
        )

    def trial_ended(self, result: Any) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None
        if self._t0:
            seconds: float | None = time.perf_counter() - self._t0
        else:  # ended by a worker: its own training time (none known for a failed trial)
            seconds = result.metrics.get("fit_seconds")
        self._t0 = 0.0
        if result.status == "completed":
            outcome = f"{self._objective} [bold]{result.score:.4g}[/]"
        else:
            # A failure's text is the library's (a cuDNN error lists "[num_layers, ...]"):
            # printed as it is, never read as markup.
            outcome = f"[red]{result.status.upper()}[/] {escape(result.failure or '')}".rstrip()
        worker = escape(f" [{result.worker}]") if result.worker else ""
        if result.reused:
            took = " (recorded before the stop: not run again)"
        else:
            took = "" if seconds is None else f" ({seconds:.1f} s)"
        if result.late:
            took += (
                "; too late for the study: the chief had given this trial up (the worker "
                "was silent past its timeout, or the trial started again elsewhere)"
            )
        self.console.print(
            f"Trial {result.number}/{self._total}{worker} {escape(format_values(result.values))} "
            f"-> {outcome}{took}",
        )


def print_search_result(console: Console, result: Any) -> None:
    """The closing summary: best trial, its score, where it is recorded, how to look."""
    completed = sum(1 for t in result.trials if t.status == "completed")
    console.print(
        f"\n{completed} of {len(result.trials)} trials completed "
        f"({len(result.trials) - completed} failed)."
    )
    if len(result.trials) < result.max_trials:
        console.print(
            f"The tuner stopped after {len(result.trials)} of {result.max_trials} trials: "
            "the space has no untried configuration left."
        )
    # The answer before the best trial's figures: a best trial that does not beat the
    # task's trivial baseline is said before its scores are shown.
    if result.answer:
        console.print("\n[bold]Answer[/] (the report's first section):")
        for line in result.answer:
            warning = line.startswith("**")  # the baseline verdict, an unfinished search
            style = "bold red" if warning else None
            console.print(f"- {line.replace('**', '')}", markup=False, style=style)
    best = result.best
    if best is not None:
        console.print(f"[bold]Best trial {best.number}[/]: {result.objective} {best.score:.5g}")
        table = Table(show_header=True)
        table.add_column("hyperparameter / measure")
        table.add_column("value")
        for key, value in best.values.items():
            shown = f"{value:.4g}" if isinstance(value, float) else f"{value}"
            table.add_row(key, "none" if value is None else shown)
        shown_keys = (
            "test_loss",
            "test_mse",
            "test_accuracy",
            "test_mae",
            "test_rmse",
            "test_mape",
        )
        table.add_section()
        for key in (*shown_keys, "n_params", "epoch_seconds"):
            if key in best.metrics:
                table.add_row(f"[dim]{key}[/]", f"{best.metrics[key]:.5g}")
        console.print(table)
    console.print(f"Experiment: {result.experiment}", markup=False)
    console.print(f"Parent run: {result.parent_run_id}", markup=False)
    console.print(f"Tracking URI: {result.tracking_uri}", markup=False, soft_wrap=True)
    hint = "workbench ui"
    if result.tracking_uri != resolve_tracking_uri(None):
        hint += f" --tracking-uri {shlex.quote(result.tracking_uri)}"
    if served_ui(result.tracking_uri):  # an MLflow server shows the study in its own UI
        hint = f"the server's own UI at {served_ui(result.tracking_uri)}"
    console.print(f"Open the MLflow UI: {hint}, then:", markup=False, soft_wrap=True)
    for line in result.links:
        console.print(f"  {line}", markup=False, soft_wrap=True)
