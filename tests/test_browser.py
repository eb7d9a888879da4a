"""In a real browser: the MLflow UI shows a finished study's trial runs and params, and
report.html renders its tables and figures offline. Headless Debian chromium via Selenium
(.ci/run installs chromium and chromium-driver; elsewhere these tests are skipped with the
command that installs them, and under .ci/run they fail instead); screenshots land in the
temp folder.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from workbench.report import make_report
from workbench.tracking import Study, resolve_tracking_uri, ui_command

EXPERIMENT = "browser-study"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
_NO_BROWSER = not (Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file())
# .ci/run sets it: on our CI machine a missing browser fails these tests instead of skipping.
_REQUIRED = os.environ.get("WORKBENCH_REQUIRE_SYSTEM_PACKAGES") == "1"

# One worker runs the module, so the UI server and the browser start once.
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.xdist_group("browser"),
    pytest.mark.skipif(
        _NO_BROWSER and not _REQUIRED,
        reason="no headless chromium: sudo apt-get install -y chromium chromium-driver",
    ),
]


@pytest.fixture(autouse=True)
def _browser_required() -> None:
    if _NO_BROWSER:  # only reached when required (else skipped above)
        pytest.fail(
            "WORKBENCH_REQUIRE_SYSTEM_PACKAGES=1 but chromium or chromedriver is missing: "
            ".ci/run installs them"
        )


@dataclass(frozen=True)
class Served:
    root: Path
    experiment_id: str
    port: int
    report: Path
    driver: object


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _write_study(uri: str) -> str:
    """A finished 4-trial study (LSTM and GRU at two sizes), recorded the way a search does."""
    study = Study(uri, EXPERIMENT)
    study.open_search(
        params={
            "task": "tiny",
            "space": "s",
            "tuner": "grid",
            "objective": "val_loss",
            "direction": "min",
        },
        tags={"task": "tiny", "space": "s", "tuner": "grid"},
        resume=False,
        run_name="search-grid",
    )
    number = 0
    for cell in ("lstm", "gru"):
        for units in (8, 16):
            number += 1
            params = {
                "cell": cell,
                "depth": 1,
                "bidirectional": False,
                "units": units,
                "clipping": "none",
                "clip_threshold": "none",
                "learning_rate": 0.01,
                "dropout": 0.0,
                "batch_size": 16,
                "epochs": 2,
            }
            run = study.start_trial(
                str(number - 1),
                params,
                {"cell": cell, "workbench.trial_number": number},
                f"trial-{number:03d} {cell} x1 u{units}",
            )
            for epoch in range(2):
                run.log_epoch(epoch, {"loss": 1 / (epoch + 1), "val_loss": 1.1 / (epoch + 1)})
            run.finish(
                {
                    "score": 0.5 + number / 10,
                    "n_params": units * units * 4,
                    "epoch_seconds": 0.5,
                    "fit_seconds": 1.0,
                    "peak_memory_mb": 300.0,
                }
            )
    study.end_search("FINISHED")
    return str(study.experiment_id)


def _driver():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1600,1000",
    ):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("browser")
    uri = resolve_tracking_uri(f"sqlite:///{root / 'store' / 'mlflow.db'}")
    experiment_id = _write_study(uri)
    port = _free_port()
    env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]}
    log = open(root / "ui.log", "w")  # noqa: SIM115 - closed after the server stops
    # Its own process group: the UI's uvicorn and job-runner children stop with it.
    server = subprocess.Popen(
        ui_command(uri, port=port),
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    driver = None
    try:
        make_report(EXPERIMENT, root / "report", tracking_uri=uri)  # while the UI starts
        driver = _driver()
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((root / "ui.log").read_text()[-2000:]) from None
                time.sleep(0.5)
        yield Served(root, experiment_id, port, root / "report" / "report.html", driver)
    finally:
        if driver is not None:
            driver.quit()
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        log.close()


def _wait_for_text(driver, text: str, seconds: float = 60) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, seconds).until(lambda d: text in d.find_element("tag name", "body").text)


def test_mlflow_ui_shows_the_trial_runs_and_their_cell_param(served: Served) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    driver = served.driver
    # The UI may open in GenAI mode; the runs page of the experiment is the training view.
    driver.get(f"http://127.0.0.1:{served.port}/#/experiments/{served.experiment_id}/runs")
    _wait_for_text(driver, "search-grid")
    assert "5 matching runs" in driver.find_element("tag name", "body").text
    # Trial runs are nested under the search run: expand it.
    name = driver.find_element("xpath", "//*[text()='search-grid']")
    row = name.find_element("xpath", "./ancestor::*[@role='row'][1]")
    row.find_element("css selector", "button[data-component-id*='runnamecellrenderer']").click()
    _wait_for_text(driver, "trial-004 gru x1 u16")
    body = driver.find_element("tag name", "body").text
    assert all(f"trial-00{n}" in body for n in range(1, 5))
    driver.save_screenshot(str(served.root / "mlflow_runs.png"))
    # A trial's page lists its params, `cell` among them.
    driver.find_element("xpath", "//a[contains(., 'trial-001 lstm x1 u8')]").click()
    _wait_for_text(driver, "Parameters")
    cell = WebDriverWait(driver, 30).until(
        lambda d: d.find_elements("xpath", "//*[normalize-space(text())='cell']")
    )[-1]
    driver.execute_script("arguments[0].scrollIntoView()", cell)
    body = driver.find_element("tag name", "body").text
    # The param's value beside its name (the run's name also holds "lstm").
    assert "learning_rate" in body and re.search(r"(^|\n)cell\s+lstm(\n|$)", body), body
    driver.save_screenshot(str(served.root / "mlflow_trial.png"))


def test_the_printed_links_open_the_trials_and_their_comparison(served: Served) -> None:
    from mlflow import MlflowClient

    from workbench.tracking import study_links_for

    uri = resolve_tracking_uri(f"sqlite:///{served.root / 'store' / 'mlflow.db'}")
    experiment = MlflowClient(uri).get_experiment(served.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    links = study_links_for(uri, EXPERIMENT, port=served.port)
    driver = served.driver
    # In a fresh profile: the runs link lists the four trials (not collapsed under the
    # search run), sorted by score, best first.
    driver.get(links.runs)
    _wait_for_text(driver, "trial-004 gru x1 u16")
    body = driver.find_element("tag name", "body").text
    assert "4 matching runs" in body and "Sort: score" in body and "search-grid" not in body
    names = [n for n in body.splitlines() if n.startswith("trial-00")]
    assert names[0] == "trial-001 lstm x1 u8"  # score 0.6, the lowest (val_loss)
    driver.save_screenshot(str(served.root / "mlflow_links_runs.png"))
    # The compare link: a parallel-coordinates plot over cell, and score among the metrics.
    driver.get(links.compare)
    _wait_for_text(driver, "Parallel Coordinates Plot")
    _wait_for_text(driver, "Comparing 4 Runs from 1 Experiment")
    body = driver.find_element("tag name", "body").text
    assert "cell" in body and "score" in body and "Box Plot" in body
    lines = body.splitlines()
    assert any(line.split() == ["cell", "lstm", "lstm", "gru", "gru"] for line in lines)
    driver.save_screenshot(str(served.root / "mlflow_links_compare.png"))


def test_report_html_renders_its_tables_and_figures_offline(served: Served) -> None:
    driver = served.driver
    driver.get(served.report.as_uri())
    _wait_for_text(driver, "9. Claims check", seconds=10)
    headings = [h.text for h in driver.find_elements("tag name", "h2")]
    assert len(headings) == 9 and headings[:2] == ["1. Answer", "2. Overview"]
    tables = driver.find_elements("tag name", "table")
    assert len(tables) >= 8
    assert "GRU needs about 40% less memory" in driver.find_element("tag name", "body").text
    images = driver.find_elements("tag name", "img")
    assert images
    for image in images:  # embedded PNGs decoded and drawn by the browser
        assert image.get_attribute("src").startswith("data:image/png;base64,")
        assert driver.execute_script("return arguments[0].naturalWidth", image) > 100
    driver.save_screenshot(str(served.root / "report.png"))
