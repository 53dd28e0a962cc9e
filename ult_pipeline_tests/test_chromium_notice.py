"""Browser tests skipped for a missing chromium end the run with one loud line saying how to install it."""

from __future__ import annotations

import subprocess
import sys

from ult_pipeline_tests.conftest import ROOT


def _pytest(tmp_path, tests: str) -> str:
    (tmp_path / "conftest.py").write_text("from ult_pipeline_tests.conftest import pytest_terminal_summary  # noqa\n")
    (tmp_path / "test_browser.py").write_text("import pytest\n\n" + tests)
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir",
                             str(tmp_path), "-c", "/dev/null", str(tmp_path)],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    return result.stdout


def test_skipped_browser_tests_are_counted_with_how_to_install_chromium(tmp_path):
    out = _pytest(tmp_path, "\n".join(
        f"@pytest.mark.skip(reason=\"Debian's chromium is not installed (.ci/run installs it)\")\n"
        f"def test_page_{n}():\n    pass\n" for n in range(2)) + "\ndef test_other():\n    pass\n")
    notice = [line for line in out.splitlines() if "SKIPPED: chromium is not installed" in line]
    assert len(notice) == 1, out
    assert notice[0].startswith("2 browser tests were SKIPPED") and "apt-get install chromium" in notice[0]


def test_no_notice_when_nothing_was_skipped_for_chromium(tmp_path):
    out = _pytest(tmp_path, "@pytest.mark.skip(reason='not today')\ndef test_a():\n    pass\n")
    assert "chromium" not in out, out
