"""The demo's report server serves reports, never a build's identities (tokens)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import requests

from ult_pipeline.demo.report_server import is_served
from ult_pipeline.demo.run import DemoOptionError, DemoOptions, check_options
from ult_pipeline_tests.conftest import free_port


def test_only_report_files_are_served():
    assert is_served("/trend/trend_report.html") and is_served("/v1.0.0-abc/verdict.json")
    for path in ("/v1.0.0-abc/identities.json", "/", "/v1.0.0-abc/", "/history/tags.json", "/x/identities.json?a=.html",
                 "/x/%69dentities.json"):
        assert not is_served(path), path


def test_a_running_server_refuses_identities_and_serves_the_report(tmp_path):
    (tmp_path / "trend").mkdir()
    (tmp_path / "trend" / "trend_report.html").write_text("<html>report</html>")
    (tmp_path / "b1").mkdir()
    (tmp_path / "b1" / "identities.json").write_text('{"token": "secret-token"}')
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "ult_pipeline.demo.report_server", "--directory", str(tmp_path),
                             "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline, answer = time.monotonic() + 30, None
        while answer is None and time.monotonic() < deadline:
            try:
                answer = requests.get(f"http://127.0.0.1:{port}/trend/trend_report.html", timeout=2)
            except requests.RequestException:
                time.sleep(0.1)
        assert answer is not None and answer.status_code == 200 and "report" in answer.text
        refused = requests.get(f"http://127.0.0.1:{port}/b1/identities.json", timeout=5)
        assert refused.status_code == 404 and "secret-token" not in refused.text
    finally:
        proc.kill()
        proc.wait(10)


def _options(tmp_path, **changes) -> DemoOptions:
    values = dict(home=tmp_path, service_port=1, aws_port=2, ui_port=3, report_port=4, duration="60s",
                  dataset_profile="standard", keep_running=False, run_timeout_s=900)
    values.update(changes)
    return DemoOptions(**values)


@pytest.mark.parametrize(("changes", "said"), [
    ({"duration": "90"}, "is not like 30s"), ({"duration": "0s"}, "duration"), ({"dataset_profile": "huge"}, "huge"),
    ({"aws_port": 3}, "same port"),
])
def test_an_option_the_pipeline_would_refuse_is_one_line_before_anything_starts(tmp_path, changes, said):
    with pytest.raises(DemoOptionError, match=said) as raised:
        check_options(_options(tmp_path, **changes))
    assert "\n" not in raised.value.message
    check_options(_options(tmp_path))  # the defaults hold
