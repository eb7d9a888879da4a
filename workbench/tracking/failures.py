"""The tracking store's failures as the workbench's errors: what stops a search."""

from __future__ import annotations

from typing import Any

from workbench.errors import WorkbenchError
from workbench.tracking.store import failure_reason, store_lost

_STARTED_ELSEWHERE = (
    "Study {experiment!r} was started by another process at the same moment (its runs "
    "appeared as this search opened: the same command in another folder or on another "
    "host?). Nothing of it was deleted, and this search stopped. To search one study from "
    "several hosts, run a chief and workers (workbench chief --help); else pick another "
    "--experiment."
)


class StartedElsewhere(WorkbenchError):
    """The study was started by another process at the same moment (see
    :meth:`~workbench.tracking.study.Study.open_search`'s ``fresh``)."""


class StoreFailed(WorkbenchError):
    """The tracking store failed while a search wrote to it or read from it (a lost
    server, a full disk, a refused write). It stops the search, not one trial: nothing
    after it could be recorded."""


#: MLflow's answers to a request it refused (the store answered): no lost store.
_REFUSED = {
    "RESOURCE_ALREADY_EXISTS",
    "RESOURCE_DOES_NOT_EXIST",
    "INVALID_PARAMETER_VALUE",
    "INVALID_STATE",
    "BAD_REQUEST",
}


class _Guarded:
    """An ``MlflowClient`` whose failures become :class:`StoreFailed`, naming the store
    and the call, in one line."""

    def __init__(self, mlflow_client: Any, tracking_uri: str) -> None:
        self._client = mlflow_client
        self._uri = tracking_uri

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return attribute(*args, **kwargs)
            except WorkbenchError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure of the store, named
                if getattr(exc, "error_code", "") not in _REFUSED:
                    store_lost()  # the search stops: its last writes are tried once each
                raise StoreFailed(
                    f"The MLflow tracking store at {self._uri} failed ({name}): "
                    f"{failure_reason(exc)}"
                ) from exc

        return call
