"""Open a run's report.html in headless Chromium: every image decoded, summary numbers equal to report.json.

Writes the page first (``sdnas report``), then checks it with ``sdnas_deploy.visual.browser`` and keeps a
screenshot. Prints one PASSED/FAILED line per check and writes bench/results/report_browser.json (and
report_screenshot.png beside it). Needs Chromium (``apt-get install chromium``).

    .venv/bin/python bench/report_browser.py RUN_DIR     # e.g. runs/demo after `make demo`
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sdnas_deploy.errors import SdnasError  # noqa: E402
from sdnas_deploy.io_utils import atomic_write_json  # noqa: E402
from sdnas_deploy.visual.browser import check_report_page  # noqa: E402
from sdnas_deploy.visual.report import write_report  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    try:
        write_report(args.run_dir)
        result = check_report_page(args.run_dir, args.out / "report_screenshot.png")
    except SdnasError as exc:
        sys.exit(f"error: {exc.message}")
    decoded = sum(1 for i in result["images"] if i["complete"] and i["width"] > 0)
    print(f"{'PASSED' if result['images_decoded'] else 'FAILED'}: {decoded}/{len(result['images'])} images decoded")
    matching = sum(1 for s in result["summary"] if s["matches"])
    print(f"{'PASSED' if result['summary_matches'] else 'FAILED'}: {matching}/{len(result['summary'])} summary "
          "values equal report.json")
    for row in result["summary"]:
        if not row["matches"]:
            print(f"  {row['key']}: page shows {row['shown']!r}, report.json has {row['json']!r}")
    atomic_write_json(args.out / "report_browser.json", {"run_dir": str(args.run_dir), **result})
    print(f"{'PASSED' if result['passed'] else 'FAILED'}: report page {result['page']} in {result['browser']}")
    sys.exit(0 if result["passed"] else 1)


if __name__ == "__main__":
    main()
