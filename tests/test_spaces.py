"""Search spaces: shipped files load; bad files give their own clear message."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from workbench.errors import WorkbenchError
from workbench.spaces import Choice, Range, list_spaces, load_space


def test_shipped_spaces_load() -> None:
    names = {space.name for space in list_spaces()}
    assert {"small", "default", "gru_vs_lstm"} <= names


def test_default_space_covers_every_dimension() -> None:
    space = load_space("default")
    assert space["cell"] == Choice(("simple_rnn", "lstm", "gru"))
    assert space["depth"] == Range(1, 3, integer=True)
    lr = space["learning_rate"]
    assert isinstance(lr, Range) and lr.sampling == "log" and lr.low == pytest.approx(1e-4)
    assert set(space["clipping"].values) - {"none"}  # some choice clips gradients


def test_gru_vs_lstm_fixes_everything_but_cell_and_units() -> None:
    space = load_space("gru_vs_lstm")
    varying = {name for name, dim in space.dimensions if not dim.is_fixed}
    assert varying == {"cell", "units"}


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "space.yaml"
    path.write_text(textwrap.dedent(body))
    return path


def test_yaml_exponent_without_dot_is_a_float(tmp_path: Path) -> None:
    # PyYAML (YAML 1.1) would read 1e-4 as the string "1e-4".
    space = load_space(_write(tmp_path, "dimensions: {cell: gru, learning_rate: 1e-4}"))
    assert space["learning_rate"] == Choice((1e-4,))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        # YAML 1.1: 010 is 8 (octal) and 1:30 is 90 (base 60), silently.
        ("dimensions: {cell: gru, units: 010}", "Received: '010'"),
        ("dimensions: {cell: gru, units: 1:30}", "Received: '1:30'"),
        # PyYAML kept the last of two equal keys.
        ("dimensions:\n  units: 8\n  units: 16\n", "line 3, column 3): the key 'units' is given"),
    ],
)
def test_yaml_1_1_integers_and_a_key_given_twice_are_refused(
    tmp_path: Path, body: str, message: str
) -> None:
    with pytest.raises(WorkbenchError, match=re.escape(message)):
        load_space(_write(tmp_path, body))
    assert load_space(_write(tmp_path, "dimensions: {units: 0x10}"))["units"] == Choice((16,))


def test_missing_dimensions_take_defaults(tmp_path: Path) -> None:
    space = load_space(_write(tmp_path, "dimensions: {cell: [lstm, gru]}"))
    assert space["depth"] == Choice((1,))
    assert space["clipping"] == Choice(("none",))
    assert space.name == "space"


def test_with_fixed_overrides_one_dimension() -> None:
    space = load_space("small").with_fixed(epochs=1)
    assert space["epochs"] == Choice((1,)) and space.max_epochs == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("dimensions: {cell: gru}\nmystery: 1\n", "unknown key 'mystery'"),
        ("dimensions: {cell: gru, hidden: 3}\n", "dimensions.hidden: unknown dimension"),
        ("dimensions: {cell: []}\n", "dimensions.cell: expected at least one value"),
        ("dimensions: {cell: gru, units: [big]}\n", "units: expected a positive integer"),
        ("dimensions: {cell: gru, units: {min: 64, max: 8}}\n", "min 64 is above max 8"),
        ("dimensions: {cell: transformer}\n", "expected one of simple_rnn, lstm, gru"),
        ("dimensions: {cell: gru, clipping: [no, norm]}\n", "YAML 1.1 reads unquoted"),
        (
            "dimensions: {cell: gru, dropout: {min: 0, max: 0.5, sampling: log}}\n",
            "log sampling needs min > 0",
        ),
        ("dimensions: {cell: gru, dropout: 1.5}\n", "expected 0 <= dropout < 1"),
        ("dimensions: {cell: [gru, gru]}\n", "choices must be distinct"),
        ("dimensions: {cell: {min: 1, max: 2}}\n", "only fits numeric dimensions"),
        ("dimensions: {cell: gru, readout: {min: last, max: mean}}\n", "only fits numeric"),
        (
            "dimensions: {cell: gru, units: {min: 16, max: 64, step: 0.5}}\n",
            "units.step: expected a whole number for an integer range",
        ),
        (
            "dimensions: {cell: gru, learning_rate: {min: 1e-4, max: 1e-2, sampling: log, "
            "step: 1e-4}}\n",
            "with log sampling the step is a factor, expected above 1",
        ),
        ("dimensions: {cell: gru, bidirectional: maybe}\n", "expected true or false"),
        ("dimensions: {cell: gru, units: {min: 8}}\n", "needs both min and max"),
        ("dimensions: [cell, gru]\n", "dimensions: expected a mapping"),
        ("dimensions: {cell: gru\n", "malformed YAML"),
        ("- just\n- a list\n", "expected a mapping of keys at the top level"),
    ],
)
def test_bad_space_files_name_file_key_and_problem(tmp_path: Path, body: str, message: str) -> None:
    path = _write(tmp_path, body)
    with pytest.raises(WorkbenchError) as info:
        load_space(path)
    text = str(info.value)
    assert message in text
    assert str(path) in text
    assert "\n" not in text


def test_unknown_space_name_lists_the_shipped_ones() -> None:
    with pytest.raises(WorkbenchError, match="Unknown search space 'nope'.*small"):
        load_space("nope")


def test_missing_space_file() -> None:
    with pytest.raises(WorkbenchError, match="search space file not found: missing.yaml"):
        load_space("missing.yaml")


def _grid_trials(space) -> int:
    """How many trials KerasTuner's own grid oracle creates for ``space``."""
    import tempfile

    import keras_tuner as kt

    from workbench.search.hypermodel import declare

    hp = kt.HyperParameters()
    declare(space, hp)
    oracle = kt.oracles.GridSearchOracle(
        objective=kt.Objective("score", "min"), hyperparameters=hp
    )
    oracle._set_project_dir(tempfile.mkdtemp(), "grid")
    created = 0
    while created < 1000:
        trial = oracle.create_trial("counter")
        if trial.status == "STOPPED":
            return created
        oracle.update_trial(trial.trial_id, {"score": 1.0})
        oracle.end_trial(trial)
        created += 1
    raise AssertionError("the grid did not end")


@pytest.mark.parametrize(
    "dimensions",
    [
        {"cell": ["lstm", "gru"], "units": [16, 32]},
        {  # an integer range without a step (KerasTuner steps it by 1), a log step,
            # a threshold that exists only with clipping, a float step
            "cell": ["lstm", "gru"],
            "depth": {"min": 1, "max": 3},
            "units": {"min": 8, "max": 64, "step": 2, "sampling": "log"},
            "clipping": ["none", "norm", "value"],
            "clip_threshold": [0.5, 1.0],
            "learning_rate": {"min": 1e-3, "max": 3e-3, "step": 1e-3},
        },
        {"cell": ["gru"], "units": {"min": 10, "max": 30, "step": 10}, "clipping": ["none"]},
        {"dropout": {"min": 0.0, "max": 0.3, "step": 0.1}, "clipping": ["none"]},
    ],
)
def test_grid_size_is_what_keras_tuners_grid_runs(dimensions: dict) -> None:
    from workbench.spaces import parse_space

    space = parse_space({"dimensions": dimensions})
    assert space.continuous == ()
    assert space.grid_size == _grid_trials(space)


def test_a_range_without_a_step_is_continuous_but_an_integer_linear_one() -> None:
    space = load_space("default")
    assert space.continuous == ("learning_rate",)  # depth 1..3 steps by 1
    assert space.grid_size is None
    assert load_space("demo").grid_size == 9


def test_a_stepped_range_reaches_its_max_or_is_refused() -> None:
    from workbench.spaces import parse_space

    def dim(spec: dict, key: str = "dropout"):
        return parse_space({"dimensions": {key: spec}})[key]

    # Floor division in KerasTuner dropped 0.3 (and logged 0.30000000000000004).
    assert dim({"min": 0.0, "max": 0.3, "step": 0.1}).values == (0.0, 0.1, 0.2, 0.3)
    rates = dim({"min": 1e-4, "max": 1e-2, "step": 10, "sampling": "log"}, "learning_rate")
    assert rates.values == (1e-4, 1e-3, 1e-2)
    assert dim({"min": 16, "max": 128, "step": 16}, "units") == Range(16, 128, True, 16)
    linear = "max 100 is not reached from min 10 in steps of 20: the values would stop at 90"
    with pytest.raises(WorkbenchError, match=linear + ". Expected a max on the steps, e.g. 90 or"):
        dim({"min": 10, "max": 100, "step": 20}, "units")
    factor = r"steps of 2 \(a factor\): the values would stop at 80"
    with pytest.raises(WorkbenchError, match=factor):
        dim({"min": 10, "max": 100, "step": 2, "sampling": "log"}, "units")


def test_yaml_merge_keys_and_other_encodings(tmp_path: Path) -> None:
    # A merge (<<: *anchor) is YAML, not a key given twice; a key it brings may be overridden.
    path = _write(
        tmp_path,
        "dimensions:\n  units: &r {min: 16, max: 128, step: 16}\n"
        "  batch_size: {<<: *r, max: 64}\n",
    )
    space = load_space(path)
    assert (space["batch_size"].low, space["batch_size"].high) == (16, 64)
    # A file saved as UTF-16 (PowerShell's >) or Latin-1: one line, not a traceback.
    path.write_bytes("dimensions: {cell: gru}\n".encode("utf-16"))
    with pytest.raises(WorkbenchError, match="expected UTF-8 text .* save the search space"):
        load_space(path)


def test_a_clip_threshold_no_clipping_uses_does_not_stop_a_grid() -> None:
    from workbench.spaces import parse_space

    space = parse_space(
        {"dimensions": {"cell": ["lstm", "gru"], "clip_threshold": {"min": 0.5, "max": 5.0}}}
    )
    assert space.continuous == () and space.grid_size == 2

