#!/usr/bin/env python3
"""Take README's screenshots of report.html (docs/report-html.png, docs/report-html-cases.png).

    pytest evals && python scripts/screenshot_report.py [reports/latest/report.html]

Opens the page in Debian's headless chromium (driven by Playwright, which downloads no browser):
the top of the page, then the appointment suite's cases table filtered to local-baseline's wrong
`service` answers.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import launch_chromium  # noqa: E402


def main() -> int:
    """Write both screenshots from the page given (default: reports/latest/report.html)."""
    page_path = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "reports/latest/report.html"
    executable = shutil.which("chromium")
    if not executable:
        print("chromium is not installed (apt-get install chromium)", file=sys.stderr)
        return 1
    with sync_playwright() as p:
        browser = launch_chromium(p, executable)
        page = browser.new_page(viewport={"width": 1300, "height": 1100})
        page.goto(page_path.resolve().as_uri(), wait_until="load")
        page.wait_for_selector("tr.case-row")
        page.screenshot(path=str(ROOT / "docs" / "report-html.png"))
        ui = "#cases-suite-appointment"
        page.select_option(f"{ui} select[data-filter=variant]", label="local-baseline")
        page.select_option(f"{ui} select[data-filter=field]", label="service")
        page.select_option(f"{ui} select[data-filter=outcome]", value="wrong")
        page.eval_on_selector(
            ui, "el => window.scrollTo(0, el.getBoundingClientRect().top + window.scrollY - 60)"
        )
        page.screenshot(path=str(ROOT / "docs" / "report-html-cases.png"))
        browser.close()
    print("written: docs/report-html.png, docs/report-html-cases.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
