"""Masked DSNs, scrubbed database errors and private files: what an operator may see and share."""

from __future__ import annotations

import os
import stat

import psycopg
import pytest

from ult_pipeline.secrets import db_error_message, mask_dsn, private_file, scrub_db_message, write_private

SECRET = "hunter2Secret"


@pytest.mark.parametrize(("dsn", "masked"), [
    ("postgresql://user:hunter2Secret@db.example:5432/app", "postgresql://user:***@db.example:5432/app"),
    ("postgres://user:hunter2Secret@h1:5432,h2:5433/app?sslmode=require",
     "postgres://user:***@h1:5432,h2:5433/app?sslmode=require"),
    ("postgresql://user:hu%40nter2Secret@h/app", "postgresql://user:***@h/app"),
    # unencoded '@', '/', '?' and '#' in the password
    ("postgresql://user:hunter2@Secret@h/app", "postgresql://user:***@h/app"),
    ("postgresql://user:hunter2/Secret@h/app", "postgresql://user:***@h/app"),
    ("postgresql://user:hunter2?Secret@h/app", "postgresql://user:***@h/app"),
    ("postgresql://user:hunter2#Secret@h/app", "postgresql://user:***@h/app"),
    ("postgresql://h/app?user=u&password=hunter2Secret&sslmode=require",
     "postgresql://h/app?user=u&password=***&sslmode=require"),
    ("postgresql://user@h/app", "postgresql://user@h/app"),
    ("host=h port=5432 user=u password=hunter2Secret dbname=app", "host=h port=5432 user=u password=*** dbname=app"),
    ("host=h password='hunter2 Secret' dbname=app", "host=h password=*** dbname=app"),
    ("host=/tmp/sock dbname=postgres", "host=/tmp/sock dbname=postgres"),
])
def test_passwords_are_masked_and_the_rest_is_kept(dsn, masked):
    assert mask_dsn(dsn) == masked


@pytest.mark.parametrize("dsn", [
    "host=h password=hunter2 Secret dbname=app",  # unquoted space: libpq cannot parse it
    "host=h password='hunter2Secret",  # unterminated quote
    "host=h PASSWORD=hunter2Secret",
    "postgresql://user:hunter2Secret@[::1/app",  # broken IPv6 literal
    "postgresql://user:hunter2Secret@h:notaport/app",
])
def test_malformed_dsns_never_show_any_part_of_the_password(dsn):
    masked = mask_dsn(dsn)
    assert "hunter2" not in masked and "Secret" not in masked, masked


def test_masking_never_raises():
    assert mask_dsn(None) == "" and mask_dsn("") == ""
    for weird in ("://", "@@@", "password=", "postgresql://:@", "\x00password=\x00x", "a" * 10000):
        assert isinstance(mask_dsn(weird), str)


@pytest.mark.parametrize("dsn", [
    "host=127.0.0.1 port=1 password=hunter2 Secret dbname=x",
    "postgresql://u:hunter2Secret@[::1/db",
    "host=127.0.0.1 port=1 password='hunter2Secret",
    "postgresql://u:hunter2Secret@127.0.0.1:1/db?passwrd=zzz",
])
def test_a_malformed_dsn_error_is_one_line_naming_the_problem_without_the_password(dsn):
    with pytest.raises(psycopg.Error) as caught:
        psycopg.connect(dsn, connect_timeout=2)
    message = db_error_message(caught.value, dsn)
    assert "\n" not in message and message.startswith("malformed DSN")
    assert "hunter2" not in message and "Secret" not in message, message


def test_an_unreachable_server_says_where_and_why(tmp_path):
    dsn = f"postgresql://u:{SECRET}@127.0.0.1:1/db?connect_timeout=2"
    with pytest.raises(psycopg.OperationalError) as caught:
        psycopg.connect(dsn)
    message = db_error_message(caught.value, dsn)
    assert message.startswith("cannot connect to postgresql://u:***@127.0.0.1:1/db")
    assert '"127.0.0.1"' in message and "refused" in message.lower() and "\n" not in message
    assert SECRET not in message


def test_scrubbing_keeps_keywords_and_hosts_and_hides_other_quoted_fragments():
    dsn = "host=db1 password=hunter2 Secret"
    assert scrub_db_message('missing "=" after "Secret" in connection info string', dsn) == \
        'missing "=" after "***" in connection info string'
    assert scrub_db_message('invalid connection option "sslmode"', dsn) == 'invalid connection option "sslmode"'
    assert scrub_db_message('connection to server at "db1" failed: FATAL: hunter2', "host=db1 password=hunter2") == \
        'connection to server at "db1" failed: FATAL: ***'


def test_a_private_file_is_0600_replaces_a_symlink_and_leaves_its_target_alone(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("untouched")
    os.chmod(victim, 0o644)
    path = tmp_path / "state.json"
    path.symlink_to(victim)
    write_private(path, SECRET)
    assert not path.is_symlink() and path.read_text() == SECRET
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert victim.read_text() == "untouched" and stat.S_IMODE(victim.stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json", "victim.txt"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path):
    path = write_private(tmp_path / "state.json", "old")
    with pytest.raises(RuntimeError), private_file(path) as f:
        f.write("half")
        raise RuntimeError("interrupted")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_a_password_with_an_unencoded_at_sign_leaves_no_piece_in_the_error():
    dsn = "postgresql://u:s3@cr3t@127.0.0.1:1/x"
    with pytest.raises(psycopg.Error) as err:
        psycopg.connect(dsn, connect_timeout=2)
    message = db_error_message(err.value, dsn)
    assert "cr3t" not in message and "s3@" not in message and "\n" not in message
