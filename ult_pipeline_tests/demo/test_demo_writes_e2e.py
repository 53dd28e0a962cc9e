"""`ult demo --writes` end to end: the write tests run on every build, the build pushed with the
4.5.0 roster-write race (v1.0.2) says `no_lost_writes FAILED` with its counts, the others `passed`,
the closing line names the lossy build, and the demo exits as the README says (0 when every build's
run succeeded: a lost write fails a check, not the run).

One demo at the shortest settings (30 s of load, the tiny dataset, no A/B re-runs), run to its end.
"""

from __future__ import annotations

import re
import time

import pytest

from ult_pipeline_tests.demo.test_demo_e2e import Demo, build_lines, story_line

# Four builds, each: deploy, seed, 30 s of reads, then two re-seeds, 30 s of admin writes and 30 s of
# roster contention, with Dagster's own overhead on a busy machine.
pytestmark = pytest.mark.timeout(2400)

_LOST = re.compile(r"no_lost_writes FAILED: (\d+) of (\d+) acknowledged roster writes lost")


@pytest.fixture(scope="module")
def writes_demo():
    started = time.monotonic()
    running = Demo(("--writes",))
    try:
        running.proc.wait(2300)
        running._reader.join(30)
        print(f"\nult demo --writes --duration 30s --profile tiny: {time.monotonic() - started:.0f} s "
              f"(exit {running.proc.returncode})")
        yield running
    finally:
        running.stop()


@pytest.mark.slow
def test_the_lossy_build_fails_no_lost_writes_the_others_pass_and_the_demo_exits_as_documented(writes_demo):
    lines = build_lines(writes_demo)
    assert [line.split()[0] for line in lines] == ["v1.0.0", "v1.0.1", "v1.0.2", "v1.1.0"], writes_demo.lines
    for line in lines:
        if line.startswith("v1.0.2 "):
            lost = _LOST.search(line)
            assert lost and int(lost.group(1)) > 0, line
            assert "roster writes unlocked" in line, line
        else:
            assert "no_lost_writes passed" in line, line
        # The write verdict (insufficient history for the first two builds) and the rows written.
        assert re.search(r"writes: [a-z]+.*, \d+ rows written;", line), line
    closing = story_line(writes_demo)
    assert re.search(r"v1\.0\.2 \(roster writes unlocked\) lost [1-9]\d* of \d+ acknowledged roster writes",
                     closing), closing
    # README: exit code 0 when every build's run succeeded, 1 otherwise.
    succeeded = all(" SUCCESS " in line for line in lines)
    assert writes_demo.proc.returncode == (0 if succeeded else 1), writes_demo.lines
    assert writes_demo.lines[-1] == "stopped the sandbox, Dagster and the report server", writes_demo.lines
