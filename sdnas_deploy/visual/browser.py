"""Check a report page in a real headless browser (Chromium): every image decodes, the summary matches the JSON.

A checker page loads ``report.html`` in an iframe and, once it has loaded, writes into its own DOM which
images decoded (``complete`` and ``naturalWidth > 0``) and the text of every summary cell; Chromium prints
that DOM (``--dump-dom``) and also takes a screenshot of the report. The summary cells are then compared
with the ``report.json`` fields their ``data-key`` names. Used by ``bench/report_browser.py`` and a slow
test; Chromium comes from Debian (``apt-get install chromium``).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from ..errors import UnsupportedEnvironmentError
from ..io_utils import load_json

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHECKER = """<!DOCTYPE html><html><body><iframe id="page" src="{src}" style="width:1280px;height:2000px"></iframe>
<pre id="result">pending</pre><script>
document.getElementById('page').addEventListener('load', function () {{
  var doc = this.contentDocument, imgs = Array.from(doc.images), cells = {{}};
  doc.querySelectorAll('#summary td[data-key]').forEach(function (td) {{ cells[td.dataset.key] = td.textContent; }});
  document.getElementById('result').textContent = JSON.stringify({{
    images: imgs.map(function (i) {{ return {{alt: i.alt, complete: i.complete, width: i.naturalWidth}}; }}),
    cells: cells, title: doc.title}});
}});
</script></body></html>
"""


def find_browser() -> str:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    raise UnsupportedEnvironmentError("no Chromium found; `apt-get install chromium` to check report pages in a browser")


def _run(browser: str, args: list[str], timeout: int = 120) -> str:
    done = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", *args],
                          capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise UnsupportedEnvironmentError(f"{browser} failed: {done.stderr.strip()[-200:]}")
    return done.stdout


def _lookup(data: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        data = data.get(part) if isinstance(data, dict) else None
    return data


def _matches(shown: str, value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return shown.strip() == str(value)
    try:
        return abs(float(shown) - float(value)) <= 1e-3 * max(1.0, abs(float(value)))
    except ValueError:
        return False


def check_report_page(run_dir: Path | str, screenshot: Path | str | None = None) -> dict[str, Any]:
    """Load ``run_dir/report.html`` in headless Chromium; return what decoded and whether the summary matches."""
    run_dir = Path(run_dir).resolve()
    page = run_dir / "report.html"
    browser = find_browser()
    with tempfile.TemporaryDirectory() as tmp:
        checker = Path(tmp) / "checker.html"
        checker.write_text(CHECKER.format(src=page.as_uri()))
        dom = _run(browser, ["--allow-file-access-from-files", "--virtual-time-budget=15000", "--dump-dom",
                             checker.as_uri()])
    found = re.search(r'<pre id="result">(.*?)</pre>', dom, re.S)
    text = found.group(1) if found else "pending"
    if text == "pending":
        raise UnsupportedEnvironmentError("the browser did not finish loading the report page; retry")
    result = json.loads(text.replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))
    report = load_json(run_dir / "report.json", "run report")
    summary = []
    for key, shown in result["cells"].items():
        source, _, dotted = key.partition(":")
        value = _lookup(report, dotted) if source == "report.json" else None
        summary.append({"key": key, "shown": shown, "json": value, "matches": _matches(shown, value)})
    if screenshot is not None:
        _run(browser, ["--window-size=1280,3000", f"--screenshot={Path(screenshot).resolve()}", page.as_uri()])
    images_ok = bool(result["images"]) and all(i["complete"] and i["width"] > 0 for i in result["images"])
    return {"page": str(page), "browser": browser, "images": result["images"], "summary": summary,
            "images_decoded": images_ok, "summary_matches": all(s["matches"] for s in summary),
            "passed": images_ok and all(s["matches"] for s in summary) and bool(summary)}
