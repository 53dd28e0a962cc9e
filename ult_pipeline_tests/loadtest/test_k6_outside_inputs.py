"""k6 output the pipeline does not control (issue 14): a k6 killed hard leaves a cut gzip file, and
K6_* variables of the worker's environment would change what k6 writes.

Unit tests on written files, then real k6 against a private sandbox service.
"""

from __future__ import annotations

import gzip
import json
import signal
import threading
import time
import zlib
from pathlib import Path

import psutil
import pytest
import requests

from ult_pipeline.loadtest.ingest import K6_CSV_COLUMNS, IngestError, ingest
from ult_pipeline.loadtest.profiles import get_load_profile
from ult_pipeline.loadtest.run import run_load_test
from ult_pipeline.loadtest.runner import K6Runner, ignored_k6_variables, k6_environment
from ult_pipeline.seeding.dataset import generate
from ult_pipeline.seeding.identities import TokenSigner
from ult_pipeline.seeding.profiles import PROFILES
from ult_pipeline.seeding.run import prepare
from ult_pipeline.target_api.client import GraphQLClient
from ult_pipeline_tests.loadtest.k6_csv import write_k6_csv
from ult_pipeline_tests.loadtest.test_service_death import private_service  # noqa: F401 - a fixture

OPS = ["me", "myUser", "memberships", "userNode"]


def complete_request_rows(path: Path) -> int:
    """http_req_duration rows that end with a newline in a (possibly cut) gzip file, read by Python's gzip
    module line by line until it gives up: an independent count of what ingest must keep."""
    count = 0
    try:
        with gzip.open(path, "rb") as f:
            for line in f:
                if line.endswith(b"\n") and line.startswith(b"http_req_duration,"):
                    count += 1
    except (EOFError, OSError, zlib.error):
        pass
    return count


@pytest.fixture
def cut_file(tmp_path):
    whole = tmp_path / "whole.csv.gz"
    write_k6_csv(whole, 5_000, OPS, seed=2, chunk=500)
    data = whole.read_bytes()
    cut = tmp_path / "samples.csv.gz"
    cut.write_bytes(data[: int(len(data) * 0.6)])  # a k6 killed 60 % of the way through its file
    return whole, cut


def test_a_cut_gzip_keeps_every_complete_row_and_says_it_was_cut(cut_file, tmp_path):
    whole, cut = cut_file
    expected = complete_request_rows(cut)
    assert 0 < expected < 5_000
    result = ingest(cut, tmp_path / "out")
    assert result.requests == expected
    assert result.truncated is not None and "ends early" in result.truncated
    assert ingest(whole, tmp_path / "whole").truncated is None


def test_a_cut_file_padded_with_zeros_keeps_the_rows_before_them(cut_file, tmp_path):
    # After a crash a file system may leave the file's last blocks zero-filled.
    _, cut = cut_file
    padded = tmp_path / "padded.csv.gz"
    padded.write_bytes(cut.read_bytes() + bytes(8192))
    result = ingest(padded, tmp_path / "out")
    assert result.requests == complete_request_rows(cut) and result.truncated is not None


def test_a_file_cut_before_its_first_row_is_a_clear_error(cut_file, tmp_path):
    whole, _ = cut_file
    tiny = tmp_path / "tiny.csv.gz"
    tiny.write_bytes(whole.read_bytes()[:12])  # the gzip header and nothing
    with pytest.raises(IngestError, match="no complete row"):
        ingest(tiny, tmp_path / "out")


def test_a_cut_run_is_an_interrupted_run_with_its_reason(cut_file, tmp_path):
    from ult_pipeline_tests.loadtest.test_ingest import _ReplayRunner  # a runner that completes

    _, cut = cut_file
    result = run_load_test(
        runner=_ReplayRunner(cut), target_url="http://127.0.0.1:9/user/", identities_path=tmp_path / "i.json",
        profile=get_load_profile("short"), out_dir=tmp_path / "k6", dataset_hash="sha256:test",
    )
    assert result.interrupted and "samples file is cut" in result.interrupted_reason
    stored = json.loads((tmp_path / "k6" / "result.json").read_text())
    assert stored["interrupted"] is True and "ends early" in stored["interrupted_reason"]


def test_no_k6_setting_of_the_parent_reaches_k6_but_the_harmless_ones():
    parent = {"K6_SYSTEM_TAGS": "url", "K6_OUT": "json=/tmp/x.json", "K6_NO_THRESHOLDS": "true",
              "K6_DURATION": "1h", "K6_SUMMARY_TREND_STATS": "avg", "K6_CSV_TIME_FORMAT": "rfc3339",
              "K6_NO_USAGE_REPORT": "true", "K6_INSECURE_SKIP_TLS_VERIFY": "true", "PATH": "/usr/bin"}
    env = k6_environment(parent, target_url="http://127.0.0.1:9/user/", identities_path=Path("/tmp/i.json"),
                         cwd=Path("/srv/k6"), profile_env={})
    for name in ("K6_SYSTEM_TAGS", "K6_OUT", "K6_NO_THRESHOLDS", "K6_DURATION", "K6_SUMMARY_TREND_STATS"):
        assert name not in env, name
    assert env["K6_CSV_TIME_FORMAT"] == "unix_milli"  # the runner's own, not the parent's
    assert env["K6_NO_USAGE_REPORT"] == "true" and env["K6_INSECURE_SKIP_TLS_VERIFY"] == "true"
    assert ignored_k6_variables(parent) == ["K6_CSV_TIME_FORMAT", "K6_DURATION", "K6_NO_THRESHOLDS", "K6_OUT",
                                            "K6_SUMMARY_TREND_STATS", "K6_SYSTEM_TAGS"]


def test_the_command_line_names_the_outputs_tags_summary_and_config(tmp_path):
    cmd = K6Runner(binary=Path("/bin/k6")).command(tmp_path / "s.csv.gz", tmp_path / "summary.json", 6565, {})
    assert cmd[cmd.index("--system-tags") + 1].split(",")[-1] == "expected_response"
    assert cmd[cmd.index("--config") + 1] == str(tmp_path / "k6-config.json")
    assert cmd[cmd.index("--summary-export") + 1] == str(tmp_path / "summary.json")


# --- real k6 -----------------------------------------------------------------------------------------------

@pytest.fixture
def seeded(private_service, tmp_path):  # noqa: F811 - the imported fixture
    url, api_key, _ = private_service
    client = GraphQLClient(url, api_key=api_key)
    try:
        prepared = prepare(client=client, dataset=generate(PROFILES["tiny"], 5), signer=TokenSigner(),
                           identities_path=tmp_path / "identities.json", wipe=None)
    finally:
        client.close()
    return url, prepared


def _our_k6() -> psutil.Process | None:
    for proc in psutil.Process().children(recursive=True):
        try:
            if proc.name() == "k6" and "--address" in proc.cmdline():
                return proc
        except psutil.Error:
            continue
    return None


def _k6_requests(k6: psutil.Process) -> int:
    try:
        cmdline = k6.cmdline()
        address = cmdline[cmdline.index("--address") + 1]
        data = requests.get(f"http://{address}/v1/metrics", timeout=2).json()["data"]
    except (psutil.Error, ValueError, IndexError, KeyError, requests.RequestException):
        return 0
    return next((int(m["attributes"]["sample"].get("count", 0)) for m in data if m["id"] == "http_reqs"), 0)


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_k6_killed_hard_in_the_middle_keeps_its_complete_rows_as_an_interrupted_run(seeded, tmp_path):
    url, prepared = seeded
    killed = threading.Event()
    stop = threading.Event()

    def kill_when_loading() -> None:
        deadline = time.monotonic() + 150
        while not stop.is_set() and time.monotonic() < deadline:
            k6 = _our_k6()
            samples = tmp_path / "k6" / "samples.csv.gz"
            # k6's gzip writer reaches the disk in deflate blocks of tens of KB: wait for a few.
            if k6 is not None and _k6_requests(k6) >= 40 and samples.exists() and samples.stat().st_size > 96_000:
                k6.send_signal(signal.SIGKILL)
                killed.set()
                return
            time.sleep(0.2)

    killer = threading.Thread(target=kill_when_loading, daemon=True)
    killer.start()
    lines: list[str] = []
    try:
        result = run_load_test(
            runner=K6Runner(), target_url=url, identities_path=prepared.identities_path,
            profile=get_load_profile("short").with_overrides(rate=10, duration="120s"), out_dir=tmp_path / "k6",
            dataset_hash=prepared.dataset_hash, log=lines.append,
        )
    finally:
        stop.set()
        killer.join(timeout=10)
    assert killed.is_set(), "k6 never loaded the target, so it was not killed"
    assert result.interrupted and "SIGKILL" in result.interrupted_reason, result.interrupted_reason
    assert result.ingested.requests == complete_request_rows(tmp_path / "k6" / "samples.csv.gz") > 0
    assert json.loads((tmp_path / "k6" / "result.json").read_text())["interrupted"] is True
    assert any("killed by SIGKILL" in line for line in lines), lines


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_k6_settings_in_the_environment_change_nothing_in_the_results(seeded, tmp_path, monkeypatch):
    url, prepared = seeded
    stray = tmp_path / "stray.json"
    for name, value in {"K6_SYSTEM_TAGS": "url", "K6_OUT": f"json={stray}", "K6_NO_THRESHOLDS": "true",
                        "K6_DURATION": "2s", "K6_CSV_TIME_FORMAT": "rfc3339"}.items():
        monkeypatch.setenv(name, value)
    lines: list[str] = []
    result = run_load_test(
        runner=K6Runner(), target_url=url, identities_path=prepared.identities_path,
        profile=get_load_profile("short").with_overrides(rate=5, duration="5s"), out_dir=tmp_path / "k6",
        dataset_hash=prepared.dataset_hash, log=lines.append,
    )
    with gzip.open(tmp_path / "k6" / "samples.csv.gz", "rt") as f:
        assert f.readline().strip().split(",") == K6_CSV_COLUMNS
    assert not result.interrupted and not stray.exists()
    operations = set(result.operations["operation"]) - {"__all__"}
    assert operations and "untagged" not in operations
    assert result.totals()["error_rate"] == 0 and result.ingested.iterations >= 20  # 5 s at 5/s, not K6_DURATION's 2 s
    assert result.k6.thresholds()  # K6_NO_THRESHOLDS did not switch the contract off
    assert any("K6_SYSTEM_TAGS" in line and "does not get" in line for line in lines), lines


def test_a_bad_checksum_at_the_end_keeps_every_row(cut_file, tmp_path):
    whole, _ = cut_file
    data = bytearray(whole.read_bytes())
    data[-8] ^= 0xFF  # the gzip trailer's CRC32
    bad = tmp_path / "bad-crc.csv.gz"
    bad.write_bytes(bytes(data))
    result = ingest(bad, tmp_path / "out")
    assert result.requests == 5_000 and "corrupt" in result.truncated


def test_a_plain_csv_named_gz_is_read_by_its_content(tmp_path):
    whole = tmp_path / "whole.csv.gz"
    write_k6_csv(whole, 300, OPS, seed=1)
    plain = tmp_path / "plain.csv.gz"
    plain.write_bytes(gzip.decompress(whole.read_bytes()))
    assert ingest(plain, tmp_path / "out").requests == 300
    garbage = tmp_path / "garbage.csv.gz"
    garbage.write_bytes(b"\x00\x01not a csv at all")
    with pytest.raises(IngestError):
        ingest(garbage, tmp_path / "out2")
