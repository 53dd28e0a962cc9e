"""Secrets kept out of what people and logs see: masked DSNs, scrubbed database errors, private files.

Every function here is safe on any input: masking never raises and, when it cannot parse a
DSN, hides more rather than less.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

MASK = "***"
# libpq's keywords whose values are secrets (sslpassword unlocks a client key).
_SECRET_KEYS = ("password", "sslpassword")
# Loose fallbacks for strings libpq cannot parse: everything after `password=` to the end
# (a malformed value may run on past a space), and URL user info up to the last '@'.
_LOOSE_KEYWORD = re.compile(r"((?:ssl)?password\s*=).*", re.IGNORECASE | re.DOTALL)
_URL_QUERY_SECRET = re.compile(r"([?&](?:ssl)?password=)[^&#]*", re.IGNORECASE)
_KEYWORD_VALUE = re.compile(r"((\w+)\s*=\s*)('(?:[^'\\]|\\.)*'|(?:[^\s'\\]|\\.)+)")
_QUOTED = re.compile(r"\"([^\"]*)\"|'([^']*)'")
# libpq keywords: safe to show when an error message quotes them (`invalid connection option "x"`).
_FALLBACK_KEYWORDS = frozenset({
    "host", "hostaddr", "port", "dbname", "user", "passfile", "channel_binding", "connect_timeout",
    "client_encoding", "options", "application_name", "fallback_application_name", "keepalives",
    "keepalives_idle", "keepalives_interval", "keepalives_count", "tcp_user_timeout", "replication",
    "gssencmode", "sslmode", "sslcompression", "sslcert", "sslkey", "sslrootcert", "sslcrl", "sslcrldir",
    "sslsni", "requirepeer", "ssl_min_protocol_version", "ssl_max_protocol_version", "krbsrvname",
    "gsslib", "gssdelegation", "service", "target_session_attrs", "load_balance_hosts",
})


def mask_dsn(dsn: str | None) -> str:
    """`dsn` with every password replaced by ``***``, for printing and storing where others may read.

    URL DSNs keep their shape (``postgresql://user:***@host:5432/db``), key=value DSNs keep
    their other keywords (``host=h password=*** dbname=db``). A DSN that cannot be parsed is
    masked loosely (from ``password=`` to the end; URL user info up to the last ``@``), so a
    malformed value never shows. Never raises; None gives "".
    """
    if not dsn:
        return ""
    try:
        if "://" in dsn:
            return _mask_url(dsn)
        return _mask_keywords(dsn)
    except Exception:  # noqa: BLE001 -- masking must never be the thing that fails
        return MASK


def _mask_url(dsn: str) -> str:
    scheme, _, rest = dsn.partition("://")
    try:
        parts = urlsplit(dsn)
        clean = "@" not in parts.path + parts.query + parts.fragment
    except ValueError:
        clean = False
    if clean:
        # Only the network location may hold user info.
        authority_end = len(scheme) + 3 + len(parts.netloc)
        authority, tail = dsn[len(scheme) + 3:authority_end], dsn[authority_end:]
    else:
        # Unencoded '/', '?' or '#' in a password confuse a URL parser: treat all up to the last
        # '@' as user info, which may hide more than the password but never less.
        at = rest.rfind("@")
        hosts_and_tail = rest[at + 1:]
        slash = hosts_and_tail.find("/")
        if slash < 0:
            authority, tail = rest, ""
        else:
            authority, tail = rest[:at + 1] + hosts_and_tail[:slash], hosts_and_tail[slash:]
    userinfo, at_sign, hosts = authority.rpartition("@")
    if at_sign and ":" in userinfo:
        authority = f"{userinfo.split(':', 1)[0]}:{MASK}@{hosts}"
    return f"{scheme}://{authority}{_URL_QUERY_SECRET.sub(lambda m: m.group(1) + MASK, tail)}"


def _mask_keywords(dsn: str) -> str:
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    try:
        params = conninfo_to_dict(dsn)
    except Exception:  # noqa: BLE001 -- psycopg's parse error quotes the DSN: never show it
        return _LOOSE_KEYWORD.sub(lambda m: m.group(1) + MASK, dsn)
    if not any(key in params for key in _SECRET_KEYS):
        return dsn
    # libpq accepted it, so its key=value grammar holds: replace the values in place, keeping order.
    masked = _KEYWORD_VALUE.sub(
        lambda m: f"{m.group(1)}{MASK}" if m.group(2).lower() in _SECRET_KEYS else m.group(0), dsn)
    with contextlib.suppress(Exception):
        reparsed = conninfo_to_dict(masked)
        if all(reparsed.get(k, MASK) == MASK for k in _SECRET_KEYS):
            return masked
    return make_conninfo("", **{k: (MASK if k in _SECRET_KEYS else v) for k, v in params.items()})


def _secret_values(dsn: str) -> list[str]:
    """The DSN's passwords, as far as they can be found (for scrubbing messages that quote them)."""
    found: list[str] = []
    with contextlib.suppress(Exception):
        from psycopg.conninfo import conninfo_to_dict

        params = conninfo_to_dict(dsn)
        found += [str(params[k]) for k in _SECRET_KEYS if params.get(k)]
    if "://" in dsn:
        userinfo = dsn.partition("://")[2].rpartition("@")[0]
        if ":" in userinfo:
            password = userinfo.split(":", 1)[1]
            found.append(password)
            # An unencoded '@' in the password: libpq splits at the first '@', so a message may
            # quote the rest as the host ("failed to resolve host 'cr3t@127.0.0.1'").
            found += [piece for piece in password.split("@") if len(piece) >= 2]
    for match in re.finditer(r"(?:ssl)?password\s*=\s*(\S+)", dsn, re.IGNORECASE):
        found.append(match.group(1).strip("'\""))
    return sorted({s for s in found if s}, key=len, reverse=True)


def _safe_fragments(dsn: str) -> set[str]:
    """Quoted fragments a libpq message may keep: keywords and the DSN's non-secret values."""
    safe = set(_FALLBACK_KEYWORDS) | {"=", "]"}  # libpq quotes the syntax it expected, too
    with contextlib.suppress(Exception):
        from psycopg import pq

        safe |= {o.keyword.decode() for o in pq.Conninfo.get_defaults()}
    safe -= set(_SECRET_KEYS)
    with contextlib.suppress(Exception):
        from psycopg.conninfo import conninfo_to_dict

        params = conninfo_to_dict(dsn)
        for key in ("host", "hostaddr", "port", "user", "dbname"):
            if params.get(key):
                safe.add(str(params[key]))
                safe.update(str(params[key]).split(","))
    return safe


def one_line(text: str) -> str:
    """`text` on one line: its lines joined by spaces, runs of whitespace collapsed."""
    return " ".join(text.split())


def first_line(error: BaseException | str) -> str:
    """The first non-empty line of an error's message (its type's name when it has none)."""
    text = str(error)
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return type(error).__name__ if isinstance(error, BaseException) else ""


def scrub_db_message(message: str, dsn: str, *, hide_quoted: bool = True) -> str:
    """A libpq/psycopg message on one line without any part of `dsn` that may be secret.

    The DSN's passwords are removed wherever they appear. libpq also quotes pieces of a DSN
    it cannot parse (``missing "=" after "secret"``): with `hide_quoted` a quoted fragment is
    kept only when it is a libpq keyword or the DSN's host, port, user or database, anything
    else quoted becomes ``***``. Messages from a server that accepted the connection quote
    names of its own (tables, roles): pass ``hide_quoted=False`` for those.
    """
    text = one_line(message)
    try:
        for secret in _secret_values(dsn):
            text = text.replace(secret, MASK)
        if not hide_quoted:
            return text
        safe = _safe_fragments(dsn)

        def keep_or_mask(match: re.Match[str]) -> str:
            inner = match.group(1) if match.group(1) is not None else match.group(2)
            quote = match.group(0)[0]
            return match.group(0) if inner in safe or inner == MASK else f"{quote}{MASK}{quote}"

        return _QUOTED.sub(keep_or_mask, text)
    except Exception:  # noqa: BLE001 -- when unsure, say nothing of the message
        return "(details hidden)"


def db_error_message(error: BaseException, dsn: str) -> str:
    """One line for a failed connection to `dsn`: what went wrong and the masked DSN, no password.

    Shape: ``malformed DSN <masked>: <reason>`` for a DSN libpq cannot parse (psycopg's
    ProgrammingError), ``cannot connect to <masked>: <reason>`` otherwise.
    """
    try:
        import psycopg

        # libpq's parse errors are ProgrammingErrors without an SQLSTATE; the server's have one.
        malformed = isinstance(error, psycopg.ProgrammingError) and not getattr(error, "sqlstate", None)
    except Exception:  # noqa: BLE001
        malformed = False
    what = "malformed DSN" if malformed else "cannot connect to"
    return f"{what} {mask_dsn(dsn)}: {scrub_db_message(str(error), dsn) or type(error).__name__}"


@contextlib.contextmanager
def private_file(path: Path, mode: str = "w") -> Iterator[IO]:
    """Write `path` readable and writable by its owner only (0600), atomically.

    The content goes to a fresh file made by ``tempfile.mkstemp`` in the same folder (a new
    name, created exclusively: never an existing file, never through a symlink) and made 0600
    before anything is written; on success it replaces `path` with ``os.replace`` (a symlink at
    `path` is replaced, not followed). On error the temporary file is removed and `path` is
    untouched. `mode`: "w" (text) or "wb". Raises OSError.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        f = os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"}))
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    try:
        with f:
            # mkstemp creates 0600 already; say so explicitly, whatever the umask or platform.
            os.fchmod(f.fileno(), 0o600)
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_private(path: Path, text: str) -> Path:
    """`text` into `path` with mode 0600, atomically (see :func:`private_file`); returns `path`."""
    with private_file(path) as f:
        f.write(text)
    return path


def create_private(path: Path, text: str) -> bool:
    """Create `path` with `text`, mode 0600, unless it exists: True if created, False if it existed.

    The content is written whole to a fresh temporary file first and then linked into place
    (``os.link`` never overwrites), so a reader never sees a half-written file and of two
    writers racing exactly one wins. Raises OSError.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            os.fchmod(f.fileno(), 0o600)
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
