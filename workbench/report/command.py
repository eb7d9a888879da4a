"""``workbench report``: read a study from MLflow, write its report, log it on the search run."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from workbench.errors import WorkbenchError
from workbench.report.answer import answer
from workbench.report.document import budget_note, build_report, overview
from workbench.report.frames import full_budget, trials_frame
from workbench.report.pages import write_report
from workbench.report.statistics import head_to_head

# --- the command's library function -------------------------------------------------------------


@dataclass(frozen=True)
class ReportResult:
    """What ``workbench report`` wrote and where it logged it."""

    out: Path
    files: tuple[Path, ...]
    parent_run_id: str
    seconds: float
    verdicts: tuple[tuple[str, str], ...]
    trials: int

    def lines(self) -> list[str]:
        """The lines the command prints."""
        figures = sum(1 for f in self.files if f.suffix == ".png")
        logged = (
            f"; logged under report/ on the search run {self.parent_run_id}"
            if self.parent_run_id
            else ""
        )
        out = [
            f"Report on {self.trials} trials written to {self.out} in {self.seconds:.1f} s: "
            f"report.html, report.md, trials.csv, {figures} figures{logged}",
        ]
        out += [f"  {claim}: {verdict}" for claim, verdict in self.verdicts]
        return out


def _check_out(out: Path) -> None:
    from workbench.folders import unwritable

    why = unwritable(out)
    if why:
        raise WorkbenchError(f"Cannot write the report folder {out}: {why}")


def make_report(
    experiment: str, out: str | Path, tracking_uri: str | None = None, log: bool = True
) -> ReportResult:
    """Read a study back from MLflow, write its report into ``out`` and log it on the search run.

    Raises:
        WorkbenchError: an unwritable ``out``, an unknown experiment, no trial runs.
    """
    from workbench.tracking import load_study, log_report_artifacts, resolve_tracking_uri

    start = time.perf_counter()
    out = Path(out)
    _check_out(out)
    uri = resolve_tracking_uri(tracking_uri)
    study = load_study(uri, experiment)
    report = build_report(study)
    try:
        files = write_report(report, out)
    except OSError as exc:
        raise WorkbenchError(f"Cannot write the report folder {out}: {exc.strerror}") from None
    if log and study.parent_run_id:
        log_report_artifacts(uri, study.parent_run_id, files)
    verdicts = tuple(
        (row["claim"], row["verdict"]) for row in report.frames["claims"].to_dict("records")
    )
    return ReportResult(
        out=out,
        files=tuple(files),
        parent_run_id=study.parent_run_id if log else "",
        seconds=time.perf_counter() - start,
        verdicts=verdicts,
        trials=len(report.trials),
    )


def study_answer(tracking_uri: str, experiment: str, brief: bool = False) -> list[str]:
    """The report's "Answer" section alone, read from MLflow (what ``workbench search`` prints);
    ``brief``: its verdicts only (see :func:`~workbench.report.answer.answer`).

    Raises:
        WorkbenchError: an unknown experiment or an unreachable store.
    """
    from workbench.tracking import load_study

    study = load_study(tracking_uri, experiment, histories=False)  # the answer needs no curves
    trials = trials_frame(study)
    info = overview(study, trials)
    compared = full_budget(trials, info["tuner"], info["max_epochs"])
    verdicts = answer(compared, info, head_to_head(compared, info["direction"]), brief=brief)
    return verdicts if brief else [*verdicts, *budget_note(trials, compared, info)]
