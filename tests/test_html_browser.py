"""The HTML matrix report in a real browser: headless Chromium, driven by Selenium.

A report from a real matrix run (one waived cell that now matches, so one cell
fails), with a real matrix beside it, a trend over an earlier run and a
scaling figure: the grids render, clicking a mark opens its detail, the filters
hide what they should and keep their choice in the address, the console has no
errors and the page asks the network for nothing. Skipped, with the reason,
where Chromium, its driver or Selenium is missing (CI installs them:
``apt-get install chromium chromium-driver``).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from _support import run_cli

from migcompat import report
from migcompat.compat.real import RealCell, RealResults
from migcompat.report.real import write_real

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None,
    reason="headless Chromium is not installed (apt-get install chromium chromium-driver)",
)
#: Flags for a browser that is alone with the page: no sandbox (CI runs as root), no GPU,
#: none of the background traffic a profile makes (updates, sync, safe browsing, field trials).
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--metrics-recording-only",
    "--disable-features=Translate,OptimizationHints,MediaRouter,DialMediaRouteProvider",
    "--window-size=1400,1000",
)


def _real() -> RealResults:
    cells = [
        RealCell("pc-e1000e", "pc-i440fx-5.2", "5.2", "10.0", real="ok", model="ok", message="byte-identical"),
        RealCell("pc-e1000e", "pc-i440fx-10.0", "10.0", "5.2", real="refused", model="refused", message="refused"),
        RealCell("pc-e1000e", "pc-i440fx-5.2", "10.0", "5.2", real="corrupt", model="ok", message="<b>changed</b>"),
    ]
    return RealResults({"5.2": "5.2.0", "10.0": "10.0.0"}, cells, 1.0, meta={"shard": "1/1"})


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("html")
    waivers = root / "waivers.toml"
    waivers.write_text('[[waiver]]\ncell = "slirp/v1->v4/ber"\nreason = "a stale waiver: one failing cell"\n')
    run = ["matrix", "--device", "slirp", "--device", "virtio", "--examples", "1", "--jobs", "2", "--no-mutants"]
    code, out, err = run_cli(*run, "--waivers", str(waivers), "--out", str(root / "earlier"))
    assert code == 1, out + err
    earlier = json.loads((root / "earlier" / "matrix.json").read_text())
    earlier["meta"]["started"] = "2026-01-01T00:00:00Z"
    (root / "earlier.json").write_text(json.dumps(earlier))
    out_dir = root / "report"
    write_real(_real(), out_dir)
    (out_dir / "scaling.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>')
    code, out, err = run_cli(
        *run, "--waivers", str(waivers), "--history", str(root / "earlier.json"), "--out", str(out_dir)
    )
    assert code == 1, out + err
    return out_dir / "matrix.html"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    profile = tempfile.mkdtemp(prefix="migcompat-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture()
def opened(browser: Any, page: Path) -> Any:
    browser.get_log("browser")
    browser.get_log("performance")
    browser.get(page.as_uri())
    return browser


def _matrix(page: Path) -> dict[str, Any]:
    return json.loads((page.parent / "matrix.json").read_text())


def _visible(browser: Any, selector: str) -> list[Any]:
    return [element for element in browser.find_elements(By.CSS_SELECTOR, selector) if element.is_displayed()]


def test_the_grids_render_with_a_mark_per_cell(opened: Any, page: Path) -> None:
    document = _matrix(page)
    grids = opened.find_elements(By.CSS_SELECTOR, "table.grid[data-device]")
    devices = {cell["device"] for cell in document["cells"]}
    assert {grid.get_attribute("data-device") for grid in grids} == devices
    for grid in grids:
        assert grid.is_displayed() and grid.size["width"] > 100 and grid.size["height"] > 50
    model_marks = opened.find_elements(By.CSS_SELECTOR, "table.grid[data-device] details.mark")
    assert len(model_marks) == len(document["cells"])
    failing = opened.find_elements(By.CSS_SELECTOR, "table.grid[data-device] details.mark.failing")
    assert [mark.get_attribute("data-device") for mark in failing] == ["slirp"]
    # The real grid beside the model's: a QEMU mark and the model's prediction per migration.
    real = opened.find_elements(By.CSS_SELECTOR, "table[data-real-config] td.cell")
    assert sum(1 for cell in real if cell.find_elements(By.CSS_SELECTOR, "details.mark")) == 3
    assert len(opened.find_elements(By.CSS_SELECTOR, "table[data-real-config] .swatch.model")) == 3
    # The trend over two runs and the scaling figure, drawn from the page alone.
    assert opened.find_elements(By.CSS_SELECTOR, "#trend svg polyline")
    image = opened.find_element(By.CSS_SELECTOR, "#scaling img")
    assert opened.execute_script("return arguments[0].complete && arguments[0].naturalWidth", image) == 10


def test_clicking_a_mark_opens_its_detail_and_escape_closes_it(opened: Any) -> None:
    first, second = opened.find_elements(By.CSS_SELECTOR, "table.grid[data-device] details.mark")[:2]
    popover = first.find_element(By.CSS_SELECTOR, ".popover")
    assert not popover.is_displayed()
    first.find_element(By.TAG_NAME, "summary").click()
    assert first.get_attribute("open") is not None and popover.is_displayed()
    key = popover.find_element(By.TAG_NAME, "h3").text
    assert "->" in key and key.split("/")[0] == first.get_attribute("data-device")
    second.find_element(By.TAG_NAME, "summary").click()
    assert first.get_attribute("open") is None and second.get_attribute("open") is not None
    opened.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
    assert not _visible(opened, "details.mark[open]")
    real = opened.find_element(By.CSS_SELECTOR, "table[data-real-config] details.mark.corrupt")
    real.find_element(By.TAG_NAME, "summary").click()
    text = real.find_element(By.CSS_SELECTOR, ".popover").text
    assert "<b>changed</b>" in text and "model" in text  # markup in a message is shown, not run


def test_the_filters_hide_what_they_should_and_keep_their_choice(opened: Any, page: Path) -> None:
    document = _matrix(page)
    marks = "table.grid[data-device] details.mark"
    Select(opened.find_element(By.NAME, "outcome")).select_by_value("failing")
    assert [mark.get_attribute("data-failing") for mark in _visible(opened, marks)] == ["true"]
    assert not _visible(opened, "#device-virtio")  # a grid with nothing left is hidden
    assert len(_visible(opened, "li.failure")) == 1
    assert "outcome=failing" in opened.current_url

    Select(opened.find_element(By.NAME, "outcome")).select_by_value("")
    Select(opened.find_element(By.NAME, "device")).select_by_value("virtio")
    shown = _visible(opened, marks)
    assert len(shown) == sum(cell["device"] == "virtio" for cell in document["cells"])
    assert not _visible(opened, "#device-slirp")

    # A link with the choice opens filtered: release 5.2 finds the model's qemu-5.2 and real QEMU 5.2.
    opened.get(page.as_uri() + "#release=qemu-5.2")
    assert Select(opened.find_element(By.NAME, "release")).first_selected_option.text == "qemu-5.2"
    for mark in _visible(opened, "details.mark[data-filterable]"):
        assert "qemu-5.2" in (mark.get_attribute("data-source"), mark.get_attribute("data-destination"))
    assert _visible(opened, "table[data-real-config] details.mark")
    expected = sum("qemu-5.2" in (cell["source"], cell["destination"]) for cell in document["cells"])
    assert len(_visible(opened, marks)) == expected

    opened.find_element(By.CSS_SELECTOR, "#filters button").click()
    assert len(_visible(opened, marks)) == len(document["cells"])
    assert "#" not in opened.current_url


def test_no_console_errors_and_no_network_requests(opened: Any) -> None:
    opened.find_element(By.CSS_SELECTOR, "details.mark summary").click()
    Select(opened.find_element(By.NAME, "outcome")).select_by_value("ok")
    errors = [entry for entry in opened.get_log("browser") if entry["level"] in ("SEVERE", "WARNING")]
    assert errors == []
    requested = []
    for entry in opened.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            requested.append(message["params"]["request"]["url"])
    assert requested, "the performance log saw no request at all: it would not see a network one either"
    assert {urlparse(url).scheme for url in requested} <= {"file", "data"}, requested


def test_refreshing_after_the_real_matrix_keeps_the_trend(page: Path) -> None:
    before = page.read_text()
    assert "2 runs" in before
    report.refresh_html(page.parent)
    assert "2 runs" in page.read_text()
