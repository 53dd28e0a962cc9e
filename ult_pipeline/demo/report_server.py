"""`python -m ult_pipeline.demo.report_server --directory RESULTS --port N`: the demo's reports over HTTP.

Serves, read-only on 127.0.0.1, only the report files of the results folder (HTML pages, images, the
verdicts and summaries as JSON, Parquet tables for download): never a build's identities file, whose
tokens sign in as students and teachers (it is 0600 on disk for that reason), nor anything else.
"""

from __future__ import annotations

import argparse
import functools
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

SERVED_SUFFIXES = frozenset({".html", ".png", ".svg", ".css", ".js", ".parquet"})
SERVED_JSON = frozenset({"verdict.json", "result.json", "telemetry_gap.json", "summary.json"})


def is_served(url_path: str) -> bool:
    """Whether a request path names a report file (a folder listing is refused too)."""
    name = PurePosixPath(unquote(urlsplit(url_path).path)).name
    return PurePosixPath(name).suffix in SERVED_SUFFIXES or name in SERVED_JSON


class ReportHandler(SimpleHTTPRequestHandler):
    def send_head(self):
        if not is_served(self.path):
            self.send_error(404, "not a report file")
            return None
        return super().send_head()

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--directory", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    handler = functools.partial(ReportHandler, directory=args.directory)
    with ThreadingHTTPServer(("127.0.0.1", args.port), handler) as server:
        server.serve_forever()


if __name__ == "__main__":
    main()
