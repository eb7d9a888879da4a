"""workbench benchmark: one study per task, then the cells ranked over the tasks."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from mlflow import MlflowClient

from workbench.cli import main


def _trial_runs(store: str) -> int:
    client = MlflowClient(store)
    ids = [e.experiment_id for e in client.search_experiments()]
    return len(client.search_runs(ids, "tags.`workbench.role` = 'trial'", max_results=1000))


@pytest.mark.e2e
def test_a_two_task_benchmark_end_to_end(store: str, workdir: Path) -> None:
    space = workdir / "space.yaml"
    space.write_text(
        "name: tiny\ndimensions: {cell: [lstm, gru], units: 4, learning_rate: 1e-2, epochs: 1}\n"
    )
    args = [
        "benchmark", "--tasks", "adding,copy_memory", "--space", str(space),
        "--max-trials", "2", "--folds", "1", "--name", "cells", "--out", "bench",
        "--tracking-uri", store,
        "--task-option", "n_train=32", "--task-option", "n_val=8", "--task-option", "n_test=8",
        "--task-option", "adding:length=10", "--task-option", "copy_memory:length=5",
    ]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "Average rank over 2 of 2 tasks" in result.output
    client = MlflowClient(store)
    for task in ("adding", "copy_memory"):
        assert client.get_experiment_by_name(f"cells-{task}") is not None
    text = (workdir / "bench" / "benchmark.md").read_text()
    assert "| adding |" in text and "| copy_memory |" in text
    assert "Nemenyi critical difference (alpha 0.05): 1.39" in text  # 2 cells, 2 tasks
    assert "and here none are: the post-hoc test follows a Friedman test" in text
    assert "| lstm vs gru |" in text or "| gru vs lstm |" in text
    assert (workdir / "bench" / "critical_difference.png").stat().st_size > 1000
    benchmark = client.get_experiment_by_name("cells")
    (run,) = client.search_runs([benchmark.experiment_id])
    assert run.data.tags["workbench.benchmark_tasks"] == "adding,copy_memory"
    logged = {a.path for a in client.list_artifacts(run.info.run_id, "benchmark")}
    assert "benchmark/benchmark.md" in logged

    trained = _trial_runs(store)
    again = CliRunner().invoke(main, args)  # complete studies: nothing trains again
    assert again.exit_code == 0, again.output
    assert _trial_runs(store) == trained == 4
    rebuilt = CliRunner().invoke(
        main, ["report", "--benchmark", "cells", "--out", "again", "--tracking-uri", store]
    )
    assert rebuilt.exit_code == 0, rebuilt.output
    assert (workdir / "again" / "benchmark.md").read_text() == text
    # Resuming and rebuilding replaced the benchmark run's report: still one run.
    (kept,) = client.search_runs([benchmark.experiment_id])
    assert kept.info.run_id == run.info.run_id


@pytest.mark.e2e
def test_a_task_whose_trials_all_fail_does_not_stop_the_others(
    store: str, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workbench.search import hypermodel

    real = hypermodel.build_model

    def build(config, signature, *args, **kwargs):  # type: ignore[no-untyped-def]
        model = real(config, signature, *args, **kwargs)
        if signature.sequence_output:  # copy_memory's models fail to train

            def fit(*args, **kwargs):  # type: ignore[no-untyped-def]
                raise ValueError("cannot train this one")

            model.fit = fit
        return model

    monkeypatch.setattr(hypermodel, "build_model", build)
    space = workdir / "space.yaml"
    space.write_text("name: tiny\ndimensions: {cell: [lstm, gru], units: 4, epochs: 1}\n")
    args = [
        "benchmark", "--tasks", "copy_memory,adding", "--space", str(space),
        "--max-trials", "2", "--folds", "1", "--name", "cells", "--out", "bench",
        "--tracking-uri", store, "--task-option", "n_train=32", "--task-option", "n_val=8",
        "--task-option", "n_test=8", "--task-option", "length=5",
    ]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "No trial finished on: copy_memory." in result.output
    assert _trial_runs(store) == 4  # adding's two trials ran after copy_memory's failed
    text = (workdir / "bench" / "benchmark.md").read_text()
    assert "| copy_memory |" in text and "| adding |" in text


@pytest.mark.e2e
def test_a_benchmark_started_with_other_settings_can_start_afresh(
    store: str, workdir: Path
) -> None:
    space = workdir / "space.yaml"
    space.write_text("name: tiny\ndimensions: {cell: lstm, units: 4, epochs: 1}\n")
    args = [
        "benchmark", "--tasks", "adding", "--space", str(space), "--max-trials", "1",
        "--folds", "1", "--name", "b", "--out", "bench", "--tracking-uri", store,
        "--task-option", "n_train=32", "--task-option", "length=5",
    ]  # fmt: skip
    assert CliRunner().invoke(main, args).exit_code == 0
    other = [*args[:-1], "length=6"]
    # A task listed before it trained first, then the refusal came (and named --experiment).
    tasks = other.index("adding")
    first = CliRunner().invoke(main, [*other[:tasks], "copy_memory,adding", *other[tasks + 1 :]])
    assert first.exit_code == 2 and "or pick another --name." in first.output, first.output
    assert _trial_runs(store) == 1
    refused = CliRunner().invoke(main, other)
    assert refused.exit_code == 2 and "add --overwrite to start afresh" in refused.output
    (oracle,) = workdir.rglob("oracle.json")  # a state file cut short: the same advice
    oracle.write_text('{"trunc')
    damaged = CliRunner().invoke(main, args)
    assert damaged.exit_code == 2 and "or pick another --name." in damaged.output
    again = CliRunner().invoke(main, [*other, "--overwrite"])  # the advice works here too
    assert again.exit_code == 0, again.output
    assert _trial_runs(store) == 1  # the earlier trial's run deleted, the new one kept


def test_a_task_option_for_one_task_wins_over_one_for_all() -> None:
    from workbench.benchmark import parse_task_options

    given = {"adding:length": 200, "length": 50, "n_train": 32}  # the task's first, then all
    per_task = parse_task_options(["adding", "copy_memory"], given)
    assert per_task == {
        "adding": {"length": 200, "n_train": 32},
        "copy_memory": {"length": 50, "n_train": 32},
    }


def test_benchmark_bad_input_is_one_line(store: str, workdir: Path) -> None:
    for args, message in [
        (["--tasks", "adding,adding"], "Expected each task once"),
        (["--tasks", "adding,nope"], "Unknown task 'nope'"),
        (["--tasks", "adding", "--task-option", "gru:x=1"], "'gru' is not one of the tasks"),
        # The second task's typo stops the benchmark before the first task trains.
        (["--tasks", "adding,copy_memory", "--task-option", "copy_memory:lenght=5"],
         "options.lenght: unknown option for loader 'copy_memory'"),
        # ... and so do folds that a later task's data cannot take.
        (["--tasks", "adding,shampoo_sales", "--folds", "10"],
         "Expected --folds at most 9 for shampoo_sales"),
    ]:
        result = CliRunner().invoke(
            main, ["benchmark", *args, "--out", "b", "--tracking-uri", store]
        )
        assert result.exit_code == 2, result.output
        assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert _trial_runs(store) == 0
    missing = CliRunner().invoke(
        main, ["report", "--benchmark", "nope", "--out", "r", "--tracking-uri", store]
    )
    assert missing.exit_code == 2 and "No benchmark 'nope'" in missing.output


def test_the_runner_up_is_another_cell_when_best_scores_tie() -> None:
    from workbench.report.benchmark import benchmark_frames
    from workbench.tracking import StudyRecord, StudyTrial

    def trial(number: int, cell: str, units: int, score: float) -> StudyTrial:
        params = {"cell": cell, "units": str(units), "learning_rate": "0.003", "epochs": "3"}
        metrics = {"score": score, "test_accuracy": score - 0.01}
        tags = {"cell": cell}
        return StudyTrial(f"r{number}", number, "FINISHED", params, metrics, {}, tags, 0, 1)

    # simple_rnn and gru share the best score; lstm is behind.
    scores = {("simple_rnn", 32): 0.98, ("gru", 32): 0.98, ("lstm", 32): 0.9,
              ("simple_rnn", 64): 0.96, ("gru", 64): 0.97, ("lstm", 64): 0.91}  # fmt: skip
    trials = [trial(i, cell, units, s) for i, ((cell, units), s) in enumerate(scores.items())]
    study = StudyRecord(
        tracking_uri="sqlite:///unused.db", experiment="b-t", experiment_id="1",
        parent_run_id="p", parent_params={"direction": "max", "objective": "val_accuracy"},
        parent_tags={"tuner": "grid", "baseline_value": "0.5"}, parent_metrics={},
        parent_start=0.0, parent_end=1.0, trials=tuple(trials),
    )  # fmt: skip
    row = benchmark_frames({"t": study})["tasks"].iloc[0]
    assert row["winner"] in ("simple_rnn", "gru")
    assert row["runner-up"] in ("simple_rnn", "gru") and row["runner-up"] != row["winner"]
    assert row["margin"] == pytest.approx(0.005 if row["winner"] == "gru" else -0.005)
    # Tied on every matched configuration: no t-test ran; it said "paired t" beside [nan, nan].
    tied = {**scores, ("gru", 64): 0.96}
    trials = [trial(i, cell, units, s) for i, ((cell, units), s) in enumerate(tied.items())]
    params = {**study.parent_params, "folds": "5"}  # --folds 0 chose cross-validation
    tied_study = dataclasses.replace(study, trials=tuple(trials), parent_params=params)
    row = benchmark_frames({"t": tied_study})["tasks"]
    assert "every difference is the same: no spread" in row.iloc[0]["margin test"]
    assert row.iloc[0]["margin 95% CI"] == "-"  # not "[nan, nan]"
    assert row.iloc[0]["folds"] == 5  # the report never said its scores were cross-validated


def test_a_task_not_better_than_its_baseline_is_said_first() -> None:
    from workbench.benchmark import _summary
    from workbench.report.benchmark import _markdown, benchmark_frames
    from workbench.tracking import StudyRecord, StudyTrial

    def study(name: str, test_accuracy: float) -> StudyRecord:
        trials = [
            StudyTrial(f"r{i}", i, "FINISHED", {"cell": cell, "units": "8", "epochs": "2"},
                       {"score": 0.6, "test_accuracy": test_accuracy}, {}, {"cell": cell}, 0, 1)
            for i, cell in enumerate(["lstm", "gru"])
        ]  # fmt: skip
        return StudyRecord(
            tracking_uri="sqlite:///unused.db", experiment=f"b-{name}", experiment_id="1",
            parent_run_id="p", parent_params={"direction": "max", "objective": "val_accuracy"},
            parent_tags={"tuner": "grid", "baseline_value": "0.6"}, parent_metrics={},
            parent_start=0.0, parent_end=1.0, trials=tuple(trials),
        )  # fmt: skip

    # Keras logs the majority-class model's 600/1000 as float32: 0.6000000238, a tie.
    frames = benchmark_frames({"tie": study("tie", 0.6000000238418579), "won": study("won", 0.7)})
    assert frames["not_better"] == ["tie"]
    markdown = _markdown("b", frames, {"tie": [], "won": []})
    assert markdown.split("\n")[2] == (
        "**Not shown better than the trivial baseline on test: tie.**"
    )
    assert _summary(frames, 2).startswith("Not shown better than the trivial baseline on test: ")
    # In each task's row too, before the winner and its margin (it came last).
    assert list(frames["tasks"].columns[:3]) == ["task", "finished trials", "beats baseline"]


def test_a_benchmark_over_accuracy_and_mse_tasks_compares_pairs_by_the_sign_test() -> None:
    from workbench.report.benchmark import benchmark_frames
    from workbench.tracking import StudyRecord, StudyTrial

    def study(direction: str, scores: dict[str, float]) -> StudyRecord:
        objective = "val_accuracy" if direction == "max" else "val_loss"
        trials = [
            StudyTrial(f"r{i}", i, "FINISHED", {"cell": cell, "units": "8", "epochs": "2"},
                       {"score": score}, {}, {"cell": cell}, 0, 1)
            for i, (cell, score) in enumerate(scores.items())
        ]  # fmt: skip
        return StudyRecord(
            tracking_uri="sqlite:///unused.db", experiment="b", experiment_id="1",
            parent_run_id="p", parent_params={"direction": direction, "objective": objective},
            parent_tags={"tuner": "grid"}, parent_metrics={},
            parent_start=0.0, parent_end=1.0, trials=tuple(trials),
        )  # fmt: skip

    accuracy = {"lstm": 0.9, "gru": 0.8}
    mixed = {"a": study("max", accuracy), "b": study("min", {"lstm": 0.1, "gru": 0.3})}
    assert [p.test for p in benchmark_frames(mixed)["pairs"]] == ["sign"]
    same = {"a": study("max", accuracy), "b": study("max", {"lstm": 0.7, "gru": 0.6})}
    assert [p.test for p in benchmark_frames(same)["pairs"]] == ["Wilcoxon"]
    # Two MSE tasks are in their own targets' units: no ranking of one against the other.
    losses = {
        "a": study("min", {"lstm": 0.1, "gru": 0.3}),
        "b": study("min", {"lstm": 5, "gru": 2}),
    }
    assert [p.test for p in benchmark_frames(losses)["pairs"]] == ["sign"]


def test_cells_with_unequal_trials_are_ranked_on_equal_n() -> None:
    from workbench.report.benchmark import _markdown, benchmark_frames
    from workbench.tracking import StudyRecord, StudyTrial

    scores = [("lstm", 0.70), ("lstm", 0.75), ("lstm", 0.80), ("lstm", 0.90), ("gru", 0.85),
              ("gru", 0.80)]  # fmt: skip
    trials = [
        StudyTrial(f"r{i}", i, "FINISHED", {"cell": cell, "units": str(8 * (i + 1))},
                   {"score": score}, {}, {"cell": cell}, 0, 1)
        for i, (cell, score) in enumerate(scores)
    ]  # fmt: skip
    study = StudyRecord(
        tracking_uri="sqlite:///unused.db", experiment="b", experiment_id="1",
        parent_run_id="p", parent_params={"direction": "max", "objective": "val_accuracy"},
        parent_tags={"tuner": "random"}, parent_metrics={}, parent_start=0.0, parent_end=1.0,
        trials=tuple(trials),
    )  # fmt: skip
    frames = benchmark_frames({"t": study})
    row = frames["table"].loc["t"]
    # Best of 4 (0.90) against best of 2 (0.85) favoured lstm for its draws; at n = 2
    # lstm expects 0.828125, gru 0.8375.
    assert row["lstm"] == pytest.approx(0.828125) and row["gru"] == pytest.approx(0.8375)
    assert frames["unequal"] == ["t (2 of 4)"]
    assert "as many trials as the fewest got (Dodge et al. 2019): t (2 of 4)" in " ".join(
        _markdown("b", frames, {"t": []}).split()
    )


def test_published_results_are_shown_beside_what_this_study_ran() -> None:
    from workbench.report.benchmark import _markdown, benchmark_frames
    from workbench.tasks import load_task
    from workbench.tracking import StudyRecord, StudyTrial

    trials = [
        StudyTrial(f"r{i}", i, "FINISHED", {"cell": cell, "units": "8", "epochs": "2"},
                   {"score": 0.01, "test_loss": 0.02}, {}, {"cell": cell}, 0, 1)
        for i, cell in enumerate(["lstm", "gru"])
    ]  # fmt: skip
    study = StudyRecord(
        tracking_uri="sqlite:///unused.db", experiment="b-adding", experiment_id="1",
        parent_run_id="p", parent_params={"direction": "min", "objective": "val_loss"},
        parent_tags={"tuner": "grid", "task_options": '{"length": 50}'}, parent_metrics={},
        parent_start=0.0, parent_end=1.0, trials=tuple(trials),
    )  # fmt: skip
    published = {"adding": load_task("adding").published}
    text = _markdown("b", benchmark_frames({"adding": study}, published), {"adding": []})
    line = next(row for row in text.splitlines() if row.startswith("- adding: "))
    assert "T=600" in line  # theirs (Bai et al. 2018) ...
    assert line.endswith('Ours: loader options {"length": 50}, measured by test_loss')


def test_the_benchmark_run_lands_beside_the_store_even_after_a_deletion(
    workdir: Path, store: str
) -> None:
    from workbench.tracking.benchmark import log_benchmark

    summary = workdir / "summary.md"
    summary.write_text("# cells\n")
    first = log_benchmark(store, "cells", ["adding"], [summary], "one task")
    client = MlflowClient(store)
    experiment = client.get_experiment_by_name("cells")
    folder = Path(store.removeprefix("sqlite:///")).parent
    # The artifacts beside the database, as a study's, not in the current folder.
    assert client.get_run(first).info.artifact_uri.startswith(folder.as_uri())
    assert not (workdir / "mlruns").exists()
    client.delete_experiment(experiment.experiment_id)  # in the UI
    again = log_benchmark(store, "cells", ["adding"], [summary], "one task")
    assert client.get_experiment_by_name("cells").lifecycle_stage == "active"
    assert [a.path for a in client.list_artifacts(again, "benchmark")] == [
        "benchmark/summary.md"
    ]


def test_a_benchmark_run_stopped_by_sigterm_is_ended_killed(
    workdir: Path, store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import signal

    from workbench.search.stopping import on_signals
    from workbench.tracking.benchmark import log_benchmark

    summary = workdir / "summary.md"
    summary.write_text("# cells\n")

    def terminated(*args: object, **kwargs: object) -> None:
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(MlflowClient, "log_artifact", terminated)
    with pytest.raises(KeyboardInterrupt), on_signals():
        log_benchmark(store, "cells", ["adding"], [summary], "one task")
    client = MlflowClient(store)
    (run,) = client.search_runs([client.get_experiment_by_name("cells").experiment_id])
    assert run.info.status == "KILLED"


def test_a_rebuilt_benchmark_report_keeps_no_diagram_of_a_ranking_it_no_longer_has(
    workdir: Path, store: str
) -> None:
    from workbench.tracking.benchmark import log_benchmark

    report, diagram = workdir / "benchmark.md", workdir / "critical_difference.png"
    report.write_text("# ranked\n")
    diagram.write_bytes(b"png")
    first = log_benchmark(store, "cells", ["adding"], [report, diagram], "ranked")
    report.write_text("# no trial finished\n")
    again = log_benchmark(store, "cells", ["adding"], [report], "no ranking")
    client = MlflowClient(store)
    experiment = client.get_experiment_by_name("cells").experiment_id
    # The earlier run kept the old diagram beside the new report that has no ranking.
    (run,) = client.search_runs([experiment])
    assert run.info.run_id == again != first
    assert [a.path for a in client.list_artifacts(again, "benchmark")] == ["benchmark/benchmark.md"]
    # Rebuilt with the same files: updated in place, one run still.
    assert log_benchmark(store, "cells", ["adding"], [report], "no ranking") == again


def test_a_benchmark_report_without_a_ranking_removes_an_earlier_diagram(workdir: Path) -> None:
    from workbench.report.benchmark import write_benchmark

    (workdir / "critical_difference.png").write_bytes(b"old ranking")
    row = {"task": "adding", "finished trials": 0, "published": "", "ours": ""}
    frames = {"tasks": pd.DataFrame([row]),
              "table": pd.DataFrame(), "not_better": []}  # fmt: skip
    files = write_benchmark("b", frames, {"adding": []}, workdir)
    assert not (workdir / "critical_difference.png").exists()
    assert [f.name for f in files] == ["benchmark.md", "benchmark.html"]
