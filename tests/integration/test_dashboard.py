# test_dashboard.py - the dashboard in a real browser: Debian's chromium,
# headless, driven by chromium-driver through python3-selenium, against the
# real traind with a token.  It submits a job through the form, follows it
# on the job page until the charts hold every epoch and the timeline shows
# the Keras lines, downloads the best file through the page's link (sha256
# = ETag), shows a server field error at its field, survives a daemon
# restart mid-job (reconnect with Last-Event-ID, no point lost or doubled),
# and a page from another loopback origin follows a stream and downloads
# through CORS.  With TRAIND_SCREENSHOTS=DIR it also saves the three pages
# at 1280x800 and 390x844 there (docs/screenshots/ holds the committed ones).

import hashlib
import http.server
import json
import os
import re
import shutil
import signal
import tempfile
import threading
import time

import pytest
from selenium import webdriver
from selenium.common.exceptions import (JavascriptException, NoAlertPresentException,
                                        StaleElementReferenceException, TimeoutException)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

from conftest import TOKEN, Daemon, free_port, sha256_file

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT = 240  # seconds: the machine is shared and slow; every wait is for a condition


def small_spec(name, epochs, steps=8):
    return {
        "name": name,
        "dataset": {"name": "fashion-mnist", "limit": 1024, "validation_limit": 256},
        "model": "shallownet",
        "optimizer": {"name": "sgd", "learning_rate": 0.01, "momentum": 0.9, "nesterov": True},
        "batch_size": 32, "epochs": epochs, "seed": 1, "steps_per_epoch": steps,
        "checkpoints": [{"filepath": "weights-{epoch:03d}-{val_loss:.4f}.hdf5",
                         "monitor": "val_loss", "mode": "min", "save_best_only": True,
                         "verbose": 1}],
    }


class PageServer:
    """A plain page on another loopback origin (for the CORS test)."""

    def __init__(self, port):
        root = tempfile.mkdtemp(prefix="traind-it-origin-")
        with open(os.path.join(root, "index.html"), "w") as f:
            f.write("<!doctype html><title>other origin</title><p>another dashboard</p>\n")
        handler = lambda *a, **kw: http.server.SimpleHTTPRequestHandler(*a, directory=root, **kw)
        http.server.SimpleHTTPRequestHandler.log_message = lambda *a: None
        self.root = root
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.url = f"http://127.0.0.1:{port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="module")
def origins():
    allowed = PageServer(free_port())
    other = PageServer(free_port())
    yield allowed, other
    allowed.close()
    other.close()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory, origins):
    allowed, _ = origins
    d = Daemon(tmp_path_factory.mktemp("dash"), token=TOKEN,
               extra_config=f"cors_allow_origins = {allowed.url}\n")
    d.start()
    yield d
    d.stop(timeout=30)


@pytest.fixture(scope="module")
def downloads():
    folder = tempfile.mkdtemp(prefix="traind-it-downloads-")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def browser(downloads):
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        pytest.fail("chromium and chromium-driver are needed (scripts/install-deps.sh)")
    profile = tempfile.mkdtemp(prefix="traind-it-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1280,800"):
        opts.add_argument(a)
    opts.add_experimental_option("prefs", {"download.default_directory": downloads,
                                           "download.prompt_for_download": False})
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    drv.set_script_timeout(WAIT)
    drv.execute_cdp_cmd("Browser.setDownloadBehavior",
                        {"behavior": "allow", "downloadPath": downloads})
    yield drv
    drv.quit()
    shutil.rmtree(profile, ignore_errors=True)


def wait_for(drv, cond, what, timeout=WAIT):
    try:
        return WebDriverWait(drv, timeout, poll_frequency=0.2,
                             ignored_exceptions=(JavascriptException,)).until(lambda d: cond(d))
    except TimeoutException:
        raise AssertionError(f"timed out waiting for {what}; page: "
                             f"{drv.find_element(By.TAG_NAME, 'main').text[:2000]}")


def js(drv, script, *args):
    return drv.execute_script(script, *args)


def open_dashboard(drv, daemon, hash_="#/jobs"):
    drv.get(f"http://127.0.0.1:{daemon.port}/{hash_}")
    wait_for(drv, lambda d: d.find_element(By.ID, "token-state").text != "", "the app to start")
    if js(drv, "return sessionStorage.getItem('traind.token')") != TOKEN:
        box = drv.find_element(By.ID, "token-input")
        box.clear()
        box.send_keys(TOKEN)
        drv.find_element(By.ID, "token-save").click()
        wait_for(drv, lambda d: d.find_element(By.ID, "token-state").text == "token set", "token")


def chart_points(drv, canvas_id):
    return js(drv, "const c = Chart.getChart(document.getElementById(arguments[0]));"
                   "return c ? c.data.labels.slice() : null;", canvas_id)


def epoch_rows(drv):
    return js(drv, "return [...document.querySelectorAll('#epoch-body tr')]"
                   ".map(r => Number(r.dataset.epoch));")


def stored_events(client, job_id):
    _, evs = client.events(job_id, "?after=0", ndjson=True)
    return [e for e in evs if e["type"] != "progress"]


def set_editor(drv, text):
    js(drv, "const e = document.getElementById('spec'); e.value = arguments[0];"
            "e.dispatchEvent(new Event('input'));", text)


def csp_violations(drv):
    return [e["message"] for e in drv.get_log("browser")
            if "Content Security Policy" in e["message"] or "Refused to" in e["message"]]


def test_submit_follow_download_and_field_error(browser, daemon, downloads):
    drv = browser
    c = daemon.client
    open_dashboard(drv, daemon, "#/submit")

    # pickers come from /v1/datasets and /v1/models; the editor holds the
    # reference job
    wait_for(drv, lambda d: len(Select(d.find_element(By.ID, "pick-model")).options) >= 4,
             "the model picker")
    spec = json.loads(drv.find_element(By.ID, "spec").get_attribute("value"))
    assert spec["model"] == "minivggnet" and spec["epochs"] == 40
    assert spec["checkpoints"][0]["filepath"] == "weights-{epoch:03d}-{val_loss:.4f}.hdf5"
    Select(drv.find_element(By.ID, "pick-model")).select_by_value("shallownet")
    assert json.loads(drv.find_element(By.ID, "spec").get_attribute("value"))["model"] == "shallownet"

    # a field error from the server is shown at its field
    bad = small_spec("bad", 2)
    bad["checkpoints"][0]["mode"] = "sideways"
    text = json.dumps(bad, indent=2)
    set_editor(drv, text)
    drv.find_element(By.ID, "submit-job").click()
    err = wait_for(drv, lambda d: d.find_element(By.ID, "spec-error") if
                   d.find_element(By.ID, "spec-error").is_displayed() else None, "the field error")
    assert err.get_attribute("data-pointer") == "/checkpoints/0/mode"
    assert "/checkpoints/0/mode" in err.text and "mode" in err.text
    editor = drv.find_element(By.ID, "spec")
    assert editor.get_attribute("aria-invalid") == "true"
    selected = js(drv, "const e = document.getElementById('spec');"
                       "return e.value.slice(e.selectionStart, e.selectionEnd);")
    assert selected == '"mode": "sideways"', selected
    assert js(drv, "return document.activeElement.id") == "spec"
    # the error box sits right above the editor
    assert js(drv, "return document.getElementById('spec-error').nextElementSibling.id") == "spec"
    assert not c.list_jobs(), "a rejected spec made a job"

    # a good spec: submitted, the page moves to the job
    epochs = 3
    set_editor(drv, json.dumps(small_spec("dash-form", epochs), indent=2))
    drv.find_element(By.ID, "submit-job").click()
    wait_for(drv, lambda d: re.fullmatch(r".*#/jobs/[0-9a-f]{16}", d.current_url), "the job page")
    job_id = drv.current_url.rsplit("/", 1)[1]
    assert c.job(job_id)["name"] == "dash-form"

    # the charts hold one point per epoch, and the timeline the Keras lines
    wait_for(drv, lambda d: chart_points(d, "chart-loss") == list(range(1, epochs + 1)),
             "every epoch on the loss chart")
    assert chart_points(drv, "chart-accuracy") == list(range(1, epochs + 1))
    wait_for(drv, lambda d: d.find_element(By.ID, "stream-state").get_attribute("data-state") == "ended",
             "the stream to end")
    final = c.wait_state(job_id, "succeeded", daemon=daemon)
    loss = js(drv, "return Chart.getChart(document.getElementById('chart-loss')).data.datasets[1].data;")
    assert loss == pytest.approx([h["val_loss"] for h in final["history"]], rel=1e-12)
    want = [e["message"] for e in stored_events(c, job_id) if e["type"] == "checkpoint"]
    assert any(re.fullmatch(r"Epoch 1: val_loss improved from inf to \d+\.\d{5}, saving model to "
                            r"weights-001-\d+\.\d{4}\.hdf5", m) for m in want), want
    lines = wait_for(drv, lambda d: [li.text for li in d.find_elements(By.CSS_SELECTOR, "#timeline li")]
                     if len(d.find_elements(By.CSS_SELECTOR, "#timeline li")) == len(want) else None,
                     "the checkpoint timeline")
    assert lines == want
    improved = drv.find_elements(By.CSS_SELECTOR, "#timeline li.improved")
    assert improved and all("improved from" in li.text for li in improved)

    # the file table lists every file, the best one marked
    wait_for(drv, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#files-body tr[data-file]"))
             == len(final["checkpoints"]), "the weight file table")
    best_rows = drv.find_elements(By.CSS_SELECTOR, "#files-body tr[data-file] .best-mark")
    assert len(best_rows) == 1

    # download the best file through the page's link: sha256 = ETag
    best_name = final["best"][0]["file"]
    link = wait_for(drv, lambda d: d.find_element(By.ID, "download-best-0"), "the best link")
    assert TOKEN not in link.get_attribute("href")
    link.click()
    path = os.path.join(downloads, best_name)
    wait_for(drv, lambda d: os.path.exists(path) and not os.path.exists(path + ".crdownload")
             and os.path.getsize(path) > 0, "the download")
    head = c.request("HEAD", f"/v1/jobs/{job_id}/best")
    assert head.headers["ETag"] == f'"{sha256_file(path)}"'
    assert os.path.getsize(path) == int(head.headers["Content-Length"])

    # the token never went into a URL, and the page broke no CSP rule
    urls = js(drv, "return performance.getEntriesByType('resource').map(e => e.name)"
                   ".concat([location.href]);")
    assert urls and not [u for u in urls if TOKEN in u]
    assert not csp_violations(drv)
    with open(daemon.log_path, encoding="utf-8", errors="replace") as f:
        assert TOKEN not in f.read()


def test_upload_dataset_then_submit_on_it(browser, daemon, tmp_path):
    """The submit page uploads an .npz (written by numpy here) with the token
    as a header and a progress bar, shows a server error at its input, adds
    the set to the picker, and a job submitted on it trains."""
    import numpy as np
    drv = browser
    c = daemon.client
    rng = np.random.default_rng(3)
    n, m = 1500, 200
    path = tmp_path / "tiny digits.npz"
    np.savez(path, x_train=rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
             y_train=rng.integers(0, 10, n), x_test=rng.integers(0, 256, (m, 28, 28), dtype=np.uint8),
             y_test=rng.integers(0, 10, m))
    size = os.path.getsize(path)
    open_dashboard(drv, daemon, "#/submit")
    wait_for(drv, lambda d: len(Select(d.find_element(By.ID, "pick-dataset")).options) >= 1,
             "the data set picker")

    # the file input names the set after the file; a name the server refuses
    # is shown at the name input
    drv.find_element(By.ID, "upload-file").send_keys(str(path))
    name_box = drv.find_element(By.ID, "upload-name")
    assert name_box.get_attribute("value") == "tiny-digits"
    name_box.clear()
    name_box.send_keys(".hidden")
    drv.find_element(By.ID, "upload-start").click()
    err = wait_for(drv, lambda d: d.find_element(By.ID, "upload-error") if
                   d.find_element(By.ID, "upload-error").is_displayed() else None, "the name error")
    assert err.get_attribute("data-field") == "name" and "data set names" in err.text
    assert name_box.get_attribute("aria-invalid") == "true"
    assert js(drv, "return document.activeElement.id") == "upload-name"
    assert c.get("/v1/datasets/.hidden").status in (400, 404)

    # the upload: the bar ends full at the file's size, the picker selects
    # the new set and the editor names it
    name_box.clear()
    name_box.send_keys("tiny-digits")
    drv.find_element(By.ID, "upload-start").click()
    wait_for(drv, lambda d: d.find_element(By.ID, "upload-form").get_attribute("data-uploaded")
             == "tiny-digits", "the upload to finish")
    bar = drv.find_element(By.ID, "upload-progress")
    assert bar.is_displayed() and not drv.find_element(By.ID, "upload-error").is_displayed()
    assert float(bar.get_attribute("max")) == size and float(bar.get_attribute("value")) == size
    assert "1500 training and 200 test examples" in drv.find_element(By.ID, "upload-status").text
    r = c.get("/v1/datasets/tiny-digits")
    assert r.status == 200 and r.json()["sha256"] == sha256_file(str(path)), r
    assert r.json()["bytes"] == size and r.json()["format"] == "npz"
    wait_for(drv, lambda d: Select(d.find_element(By.ID, "pick-dataset")).first_selected_option
             .get_attribute("value") == "tiny-digits", "the picker to select the new set")
    assert "tiny-digits" in [d["name"] for d in c.get("/v1/datasets").json()["datasets"]]
    assert json.loads(drv.find_element(By.ID, "spec").get_attribute("value"))["dataset"] == "tiny-digits"

    # a job on the uploaded set, submitted through the form, trains to the end
    spec = small_spec("on-upload", 2, steps=4)
    spec["dataset"] = "tiny-digits"
    set_editor(drv, json.dumps(spec, indent=2))
    drv.find_element(By.ID, "submit-job").click()
    wait_for(drv, lambda d: re.fullmatch(r".*#/jobs/[0-9a-f]{16}", d.current_url), "the job page")
    job_id = drv.current_url.rsplit("/", 1)[1]
    wait_for(drv, lambda d: chart_points(d, "chart-loss") == [1, 2], "both epochs on the chart")
    final = c.wait_state(job_id, "succeeded", daemon=daemon)
    ds = final["spec"]["dataset"]
    assert (ds if isinstance(ds, str) else ds["name"]) == "tiny-digits", final["spec"]
    assert len(final["history"]) == 2

    # the token went only into headers
    urls = js(drv, "return performance.getEntriesByType('resource').map(e => e.name)"
                   ".concat([location.href]);")
    assert not [u for u in urls if TOKEN in u]
    assert not csp_violations(drv)


def test_jobs_page_keyboard_and_labels(browser, daemon):
    drv = browser
    open_dashboard(drv, daemon, "#/jobs")
    wait_for(drv, lambda d: d.find_elements(By.CSS_SELECTOR, "#jobs-body tr[data-job]"), "a job row")
    # the list redraws every 2 s: read it in one script, type with key
    # actions on whatever has the focus
    row = js(drv, """const r = document.querySelector('#jobs-body tr[data-job]');
        return {state: r.querySelector('[data-state]').textContent,
                best: r.querySelector('td.best').textContent,
                progress: r.querySelector('progress').value};""")
    assert row["state"] == "succeeded", row
    assert "val_loss (min)" in row["best"], row
    assert row["progress"] == 1, row
    # every control has a name a screen reader can say
    unnamed = js(drv, """
        return [...document.querySelectorAll('input, select, textarea, button, progress, a')]
          .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
                       && !e.textContent.trim()).map(e => e.outerHTML);""")
    assert unnamed == []
    # Tab reaches the token field, the pages, the job's link and its buttons
    js(drv, "document.activeElement.blur(); window.scrollTo(0, 0);")
    seen = []
    for _ in range(14):
        ActionChains(drv).send_keys(Keys.TAB).perform()
        seen.append(js(drv, "const e = document.activeElement;"
                            "return e.id || e.getAttribute('aria-label') || e.textContent.trim();"))
    assert "nav-submit" in seen and "token-input" in seen, seen
    assert any(s.startswith("Delete ") for s in seen), seen
    # Enter on a job's link opens the job page
    js(drv, "document.querySelector('#jobs-body tr[data-job] a').focus();")
    ActionChains(drv).send_keys(Keys.ENTER).perform()
    wait_for(drv, lambda d: "#/jobs/" in d.current_url, "the job page from the keyboard")


def click_row_button(drv, job_id, label):
    """Click a button of a job's row (the list redraws every 2 s: retry a
    stale element) and return the confirmation dialog."""
    def attempt(d):
        try:
            d.find_element(By.CSS_SELECTOR, f'tr[data-job="{job_id}"] button[aria-label^="{label}"]').click()
        except StaleElementReferenceException:
            return None
        try:
            return d.switch_to.alert
        except NoAlertPresentException:
            return None
    return wait_for(drv, attempt, f"the {label} confirmation")


def test_cancel_and_delete_ask_first(browser, daemon):
    drv = browser
    c = daemon.client
    job = c.submit(small_spec("dash-cancel", 100000, steps=4))
    c.wait_state(job["id"], "running", daemon=daemon)
    open_dashboard(drv, daemon, "#/jobs")
    wait_for(drv, lambda d: d.find_elements(By.CSS_SELECTOR, f'tr[data-job="{job["id"]}"] [data-state="running"]'),
             "the running job")
    alert = click_row_button(drv, job["id"], "Cancel")
    assert "Cancel job" in alert.text and job["id"] in alert.text
    alert.dismiss()
    assert c.job(job["id"])["state"] == "running"
    click_row_button(drv, job["id"], "Cancel").accept()
    c.wait_state(job["id"], "cancelled", daemon=daemon)
    wait_for(drv, lambda d: d.find_elements(By.CSS_SELECTOR, f'tr[data-job="{job["id"]}"] [data-state="cancelled"]'),
             "the cancelled state on the page")
    alert = click_row_button(drv, job["id"], "Delete")
    assert "cannot be undone" in alert.text
    alert.dismiss()
    assert c.get(f"/v1/jobs/{job['id']}").status == 200
    click_row_button(drv, job["id"], "Delete").accept()
    wait_for(drv, lambda d: not d.find_elements(By.CSS_SELECTOR, f'tr[data-job="{job["id"]}"]'),
             "the row to go")
    assert c.get(f"/v1/jobs/{job['id']}").status == 404


def test_restart_mid_job_page_reconnects_without_losing_or_doubling(browser, daemon):
    drv = browser
    c = daemon.client
    epochs = 24
    job = c.submit(small_spec("dash-restart", epochs, steps=30))
    open_dashboard(drv, daemon, f"#/jobs/{job['id']}")
    wait_for(drv, lambda d: len(chart_points(d, "chart-loss") or []) >= 2, "two epochs on the page")
    state = c.job(job["id"])
    assert state["state"] == "running" and state["progress"]["epoch"] < epochs, \
        "the job ended before the restart: make it longer"
    port = daemon.port
    assert daemon.stop(signal.SIGTERM) == 0
    wait_for(drv, lambda d: d.find_element(By.ID, "stream-state").get_attribute("data-state")
             == "reconnecting", "the page to notice the drop")
    daemon.start(port=port)
    wait_for(drv, lambda d: int(d.find_element(By.ID, "stream-state").get_attribute("data-reconnects")) >= 1
             and d.find_element(By.ID, "stream-state").get_attribute("data-state") in ("live", "ended"),
             "the page to reconnect")
    final = c.wait_state(job["id"], "succeeded", timeout=WAIT, daemon=daemon)
    wait_for(drv, lambda d: d.find_element(By.ID, "stream-state").get_attribute("data-state") == "ended",
             "the stream to end")
    assert chart_points(drv, "chart-loss") == list(range(1, epochs + 1))
    assert epoch_rows(drv) == list(range(1, epochs + 1))
    val_loss = js(drv, "return Chart.getChart(document.getElementById('chart-loss')).data.datasets[1].data;")
    assert val_loss == pytest.approx([h["val_loss"] for h in final["history"]], rel=1e-12)
    want = [e["message"] for e in stored_events(c, job["id"]) if e["type"] == "checkpoint"]
    got = [li.text for li in drv.find_elements(By.CSS_SELECTOR, "#timeline li")]
    assert got == want
    log_seqs = js(drv, "return document.getElementById('event-log').textContent.trim().split('\\n')"
                       ".map(l => Number(l.split(' ')[0]));")
    assert len(log_seqs) == len(set(log_seqs)), "an event was shown twice"


def test_other_origin_follows_stream_and_downloads(browser, daemon, origins):
    drv = browser
    c = daemon.client
    allowed, other = origins
    job = c.submit(small_spec("dash-cors", 2))
    c.wait_state(job["id"], "succeeded", daemon=daemon)
    base = f"http://127.0.0.1:{daemon.port}"
    script = """
      const [base, id, token, done] = [arguments[0], arguments[1], arguments[2], arguments[arguments.length - 1]];
      (async () => {
        const h = {Authorization: `Bearer ${token}`};
        const r = await fetch(`${base}/v1/jobs/${id}/events`, {headers: {...h, 'Last-Event-ID': '0'}});
        const text = await r.text();
        const events = text.split('\\n').filter(l => l.startsWith('data: ')).map(l => JSON.parse(l.slice(6)));
        const f = await fetch(`${base}/v1/jobs/${id}/best`, {headers: h});
        const bytes = await f.arrayBuffer();
        const digest = await crypto.subtle.digest('SHA-256', bytes);
        const hex = [...new Uint8Array(digest)].map(b => b.toString(16).padStart(2, '0')).join('');
        done({types: events.map(e => e.type), etag: f.headers.get('ETag'), sha: hex, n: bytes.byteLength});
      })().catch(e => done({error: String(e)}));"""
    drv.get(allowed.url + "/index.html")
    res = drv.execute_async_script(script, base, job["id"], TOKEN)
    assert "error" not in res, res
    assert res["types"][-1] == "state" and "epoch_end" in res["types"] and "checkpoint" in res["types"]
    assert [t for t in res["types"] if t != "progress"] == [e["type"] for e in stored_events(c, job["id"])]
    assert res["etag"] == f'"{res["sha"]}"' and res["n"] > 0
    # a page from an origin not in cors_allow_origins cannot read the API
    drv.get(other.url + "/index.html")
    res = drv.execute_async_script(script, base, job["id"], TOKEN)
    assert "error" in res and "Failed to fetch" in res["error"], res


def test_screenshots(browser, daemon):
    """The three pages (and the upload form) at 1280x800 and 390x844, with a job training; saved
    under $TRAIND_SCREENSHOTS when set.  Checks that nothing overflows
    sideways."""
    drv = browser
    c = daemon.client
    out = os.environ.get("TRAIND_SCREENSHOTS") or tempfile.mkdtemp(prefix="traind-it-shots-")
    os.makedirs(out, exist_ok=True)
    # cancelled at the end; epochs of 400 steps last several progress intervals
    # (0.25 s) on an idle machine too, so the per-batch chart gets its points
    job = c.submit(small_spec("fashion-shallownet", 10000, steps=400))
    c.wait_state(job["id"], "running", daemon=daemon)

    def batch_points(d):
        return len(chart_points(d, "chart-batch") or [])
    try:
        for w, h, tag in ((1280, 800, "desktop"), (390, 844, "phone")):
            drv.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                {"width": w, "height": h, "deviceScaleFactor": 1, "mobile": w < 500})
            for page, hash_, ready in (
                    ("jobs", "#/jobs", lambda d: d.find_elements(
                        By.CSS_SELECTOR, f'tr[data-job="{job["id"]}"] [data-state="running"]')),
                    ("job", f"#/jobs/{job['id']}",
                     lambda d: len(chart_points(d, "chart-loss") or []) >= 3 and batch_points(d) >= 2),
                    ("submit", "#/submit",
                     lambda d: len(Select(d.find_element(By.ID, "pick-model")).options) >= 4)):
                open_dashboard(drv, daemon, hash_)
                wait_for(drv, ready, f"the {page} page at {w}x{h}")
                js(drv, "window.scrollTo(0, 0)")
                wide = js(drv, "return document.documentElement.scrollWidth")
                assert wide <= w, f"{page} at {w}x{h} scrolls sideways ({wide}px)"
                path = os.path.join(out, f"{page}-{tag}.png")
                drv.save_screenshot(path)
                assert os.path.getsize(path) > 5000
            # the upload form, below the editor on the submit page
            js(drv, "document.getElementById('upload-form').scrollIntoView()")
            path = os.path.join(out, f"upload-{tag}.png")
            drv.save_screenshot(path)
            assert os.path.getsize(path) > 5000
    finally:
        drv.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        c.post(f"/v1/jobs/{job['id']}/cancel")
    c.wait_state(job["id"], "cancelled", daemon=daemon)
