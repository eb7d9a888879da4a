"""The wire: what a chief tells its workers, on the gRPC port it serves the oracle on.

KerasTuner's chief serves only the Oracle (``keras_tuner.Oracle`` over gRPC); beside it
the chief serves ``workbench.Chief``: ``Join`` hands a worker the whole search as JSON
(task, space, tracking store, the study's parent run), so ``workbench worker --chief
HOST:PORT`` needs no other flag, ``Heartbeat`` tells the chief a worker is alive
while it trains, and ``Leave`` that it stopped (Ctrl-C, SIGTERM) without its trial. All
carry JSON bytes (no pickle: a worker runs nothing it is sent).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.search.config import SearchConfig

SERVICE = "workbench.Chief"
JOIN = f"/{SERVICE}/Join"
HEARTBEAT = f"/{SERVICE}/Heartbeat"
LEAVE = f"/{SERVICE}/Leave"
#: Bumped when the JSON changes, so a worker of another workbench version says so.
VERSION = 3


@dataclass(frozen=True)
class Assignment:
    """What a worker gets when it joins: the search and where its runs go."""

    config: SearchConfig
    experiment_id: str
    parent_run_id: str
    heartbeat_seconds: float


def encode_assignment(
    config: SearchConfig, experiment_id: str, parent_run_id: str, heartbeat_seconds: float
) -> bytes:
    """The JSON a joining worker receives."""
    task = config.task
    return json.dumps(
        {
            "version": VERSION,
            "task": {
                "name": task.name,
                "description": task.description,
                "loader": task.loader,
                "options": dict(task.options),
                "source": task.source,
                "about": dict(task.about),
                "published": [dataclasses.asdict(p) for p in task.published],
            },
            "space": config.space.to_mapping(),
            "space_source": config.space.source,
            "search": {
                "tuner": config.tuner,
                "max_trials": config.max_trials,
                "seed": config.seed,
                "experiment": config.experiment,
                "tracking_uri": config.tracking_uri,
                "keep_checkpoints": config.keep_checkpoints,
                "repeats": config.repeats,
                "deterministic": config.deterministic,
                "mixed_precision": config.mixed_precision,
                "gradient_probe": config.gradient_probe,
                "steps_per_execution": config.steps_per_execution,
                "hyperband_iterations": config.hyperband_iterations,
                "folds": config.folds,
            },
            "experiment_id": experiment_id,
            "parent_run_id": parent_run_id,
            "heartbeat_seconds": heartbeat_seconds,
        },
        default=str,
    ).encode()


def decode_assignment(payload: bytes, state_root: str | Path) -> Assignment:
    """A worker's view of the search; its state folder is its own, under ``state_root``."""
    from workbench.search.state import state_folder
    from workbench.spaces import parse_space
    from workbench.tasks import Published, TaskSpec

    data: dict[str, Any] = json.loads(payload)
    if data.get("version") != VERSION:
        raise WorkbenchError(
            f"The chief speaks wire version {data.get('version')}, this worker {VERSION}: "
            "run the same workbench version on the chief and the workers."
        )
    fields = dict(data["task"])
    fields["published"] = tuple(Published(**p) for p in fields.get("published", ()))
    task = TaskSpec(**fields)
    space = parse_space(data["space"], source=data["space_source"])
    search = data["search"]
    state_dir = state_folder(
        Path(state_root).expanduser().resolve(), search["tracking_uri"], search["experiment"]
    )
    config = SearchConfig(task=task, space=space, state_dir=state_dir, **search)
    return Assignment(
        config, data["experiment_id"], data["parent_run_id"], float(data["heartbeat_seconds"])
    )


def config_for_worker(config: SearchConfig) -> SearchConfig:
    """A worker never deletes state and never owns the cluster."""
    return dataclasses.replace(config, overwrite=False, cluster=None)


def bracketed(host: str) -> str:
    """A host as it goes before ``:PORT``: an IPv6 address in brackets."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


#: Listening addresses that mean "every interface": not an address a worker can dial.
_ANY = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1", "[::]": "::1"}


def advertised(host: str, port: int) -> str:
    """The chief's address as a worker on another host dials it: this host's name when the
    chief listens on every interface (``--host 0.0.0.0``)."""
    return f"{bracketed(_host_name() if host in _ANY else host)}:{port}"


def _host_name() -> str:
    """This host's name as others resolve it: its fully qualified name, unless that is a
    loopback name (a hosts file mapping the host name to 127.0.0.1 makes it "localhost",
    which a worker on another host would take for itself): then the bare host name."""
    import socket

    name = socket.getfqdn()
    if name == "localhost" or name.startswith("localhost.") or name.startswith("ip6-"):
        name = socket.gethostname() or name
    return name


def local(host: str, port: int) -> str:
    """The chief's address as a worker on this host dials it: loopback for every interface,
    else the address the chief listens on (it may listen on that one only)."""
    return f"{bracketed(_ANY.get(host, host))}:{port}"


def quiet_keras_tuner_protos() -> None:
    """KerasTuner 1.4 prints every conditional parent's first value (a left-over debug
    ``print`` in ``Parent.to_proto``) each time a trial crosses the wire: the same
    conversion without the print."""
    from keras_tuner.src import protos
    from keras_tuner.src.engine import conditions

    def to_proto(self: Any) -> Any:
        proto = protos.get_proto()
        first = self.values[0]
        if isinstance(first, str):
            values = [proto.Value(string_value=v) for v in self.values]
        elif isinstance(first, bool):
            values = [proto.Value(boolean_value=v) for v in self.values]
        elif isinstance(first, int):
            values = [proto.Value(int_value=v) for v in self.values]
        else:
            values = [proto.Value(float_value=v) for v in self.values]
        return proto.Condition(parent=proto.Condition.Parent(name=self.name, values=values))

    conditions.Parent.to_proto = to_proto
