"""Ingest k6's raw CSV output (gzip) into Parquet, with exact per-operation aggregates.

k6 1.1.0 writes about 13 rows per HTTP request, one per built-in metric. One
`http_req_duration` row stands for one request: its `expected_response` tag says whether
it failed and `extra_tags` carries our `operation` tag. The file is streamed in blocks
(an hour-long run is ~26 M rows); only the columns of a request are kept in memory.
Percentiles are computed from every sample, not approximated.

A k6 killed hard (OOM killer, SIGKILL, a lost node) leaves a gzip stream without its end, whose last
row may be cut. Every complete row before that is read, the cut one is dropped, and the result
says so (`IngestResult.truncated`): the run counts as interrupted, never as a broken file.

Latencies (p50/p90/p95/p99/max/mean, per operation, `__all__` and per time bucket) are of
the SUCCESSFUL requests only: a refused connection lasts ~0 ms, and counting it would make a
broken build look faster. Failed requests count in `count`, `rate` and `error_rate`; their own
median is `failed_p50`. An operation (or bucket) with no successful request has NaN latencies.

A GraphQL error comes back with HTTP 200 (so k6 counts it as an expected response), but it is a failed
request here: the suite gives each request the metadata `request` (and requests sent together the tag
`writer`), shared by its `http_req_*` samples and by its failed `graphql_errors` sample (tagged
`error_code`); the request with that key counts as failed, in `error_rate` and never as a latency.
Errors per operation and code (`IngestResult.errors`) and the rows written per write operation (the
suite's `rows_written` counter, `IngestResult.rows_written`) are summed in the same pass.
"""

from __future__ import annotations

import io
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

PERCENTILES = (50, 90, 95, 99)
K6_CSV_COLUMNS = (
    "metric_name,timestamp,metric_value,check,error,error_code,expected_response,group,method,name,proto,"
    "scenario,service,status,subproto,tls_version,url,extra_tags,metadata"
).split(",")
REQUEST_SCHEMA = pa.schema([
    ("time_ms", pa.int64()),
    ("scenario", pa.dictionary(pa.int32(), pa.string())),
    ("operation", pa.dictionary(pa.int32(), pa.string())),
    ("status", pa.int32()),
    ("duration_ms", pa.float64()),
    ("failed", pa.bool_()),
])
_USED = ["metric_name", "timestamp", "metric_value", "expected_response", "scenario", "status", "extra_tags"]
# Read when present (k6 1.1.0 writes both; older or hand-made files may lack them).
_OPTIONAL = ["error_code", "metadata"]
_OPERATION = r"(?:^|&)operation=(?P<operation>[^&]*)"
_REQUEST = r"(?:^|&)request=(?P<request>[^&]*)"
_WRITER = r"(?:^|&)writer=(?P<writer>[^&]*)"
GRAPHQL_ERRORS, ROWS_WRITTEN = "graphql_errors", "rows_written"


class IngestError(ValueError):
    pass


@dataclass(frozen=True)
class IngestResult:
    requests: int
    operations: pd.DataFrame  # one row per operation, plus "__all__"
    timeseries: pd.DataFrame  # per 10-second bucket and operation
    iterations: int
    dropped_iterations: int
    first_ms: int | None
    last_ms: int | None
    requests_path: Path
    operations_path: Path
    timeseries_path: Path
    truncated: str | None = None  # why the samples file ended early (its complete rows were read); None: whole
    # operation -> error code -> failed requests: GraphQL errors by their code, other failures by
    # `HTTP_<status>` (or k6's own error code when no answer came).
    errors: dict[str, dict[str, int]] = field(default_factory=dict)
    # operation -> rows its successful requests created or changed (the suite's `rows_written` counter).
    rows_written: dict[str, int] = field(default_factory=dict)


    @property
    def seconds(self) -> float:
        if self.first_ms is None or self.last_ms is None:
            return 0.0
        return (self.last_ms - self.first_ms) / 1000.0


class CompleteRows(io.RawIOBase):
    """The decompressed bytes of a gzip file up to its last complete row (line), as a readable stream.

    A gzip stream that ends early (no end-of-stream marker: the writer was killed) or turns corrupt
    ends the data at the last newline before that point; `truncated` then says why (None while the
    file reads whole). Several gzip members in a row are read as one stream, as gzip(1) does.
    """

    _CHUNK = 1 << 18  # compressed bytes per read; a corrupt chunk is re-read a byte at a time

    def __init__(self, path: Path):
        super().__init__()
        self._file = open(path, "rb")  # noqa: SIM115 - closed by close()
        self._inflate = zlib.decompressobj(wbits=31)  # 31: gzip header and trailer
        self._ready = bytearray()  # complete rows not read yet
        self._pending = bytearray()  # a row without its newline so far
        self._done = False
        self.truncated: str | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._ready and not self._done:
            self._fill()
        count = min(len(buffer), len(self._ready))
        buffer[:count] = self._ready[:count]
        del self._ready[:count]
        return count

    def _take(self, data: bytes) -> None:
        self._pending += data
        end = self._pending.rfind(b"\n")
        if end >= 0:
            self._ready += self._pending[: end + 1]
            del self._pending[: end + 1]

    def _fill(self) -> None:
        raw = self._file.read(self._CHUNK)
        if not raw:  # end of the file
            if self._inflate.eof:
                self._ready += self._pending  # a whole file whose last row lacks a newline: still whole
                self._pending.clear()
                self._done = True
            else:
                self._end(f"the gzip stream ends early, after {self._consumed()} (the writer was stopped "
                          "before closing it)")
            return
        while raw:
            before = self._inflate.copy()  # zlib drops a whole call's output on an error: kept to replay
            try:
                self._take(self._inflate.decompress(raw))
            except zlib.error as err:
                self._inflate = before
                self._salvage(raw)
                self._end(f"the gzip data is corrupt after {self._consumed()} ({err})")
                return
            raw = b""
            if self._inflate.eof and self._inflate.unused_data:  # another gzip member follows
                raw = self._inflate.unused_data
                self._inflate = zlib.decompressobj(wbits=31)

    def _salvage(self, raw: bytes) -> None:
        """Feeds `raw` again in small pieces, from the state before it, up to the piece zlib refuses:
        every row decoded before the corruption (or a bad checksum at the end) is kept."""
        for i in range(0, len(raw), 64):
            try:
                self._take(self._inflate.decompress(raw[i:i + 64]))
            except zlib.error:
                return

    def _consumed(self) -> str:
        return f"{self._file.tell():,} compressed bytes"

    def _end(self, why: str) -> None:
        # The bytes after the last newline are a cut row: dropped.
        self._pending.clear()
        self.truncated = why
        self._done = True

    def close(self) -> None:
        self._file.close()
        super().close()


def _open_samples(path: Path):
    """A readable binary stream of the CSV text: `CompleteRows` for gzip (by its magic bytes), else the file."""
    with open(path, "rb") as f:
        magic = f.read(2)
    if magic == b"\x1f\x8b":
        return CompleteRows(path)
    return pa.input_stream(str(path), compression=None)  # by content, not by a `.gz` in the name


def _reader(path: Path, block_size: int, stream=None) -> pacsv.CSVStreamingReader:
    try:
        return pacsv.open_csv(
            stream if stream is not None else _open_samples(path),
            read_options=pacsv.ReadOptions(block_size=block_size),
            convert_options=pacsv.ConvertOptions(
                include_columns=_USED + _OPTIONAL,
                include_missing_columns=True,
                column_types={
                    "error_code": pa.string(),
                    "metadata": pa.string(),
                    "metric_name": pa.dictionary(pa.int32(), pa.string()),
                    "timestamp": pa.int64(),
                    "metric_value": pa.float64(),
                    "expected_response": pa.string(),
                    "scenario": pa.dictionary(pa.int32(), pa.string()),
                    "status": pa.string(),
                    "extra_tags": pa.string(),
                },
                strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, OSError) as err:
        raise IngestError(f"{path}: not a k6 CSV output ({err})") from None


def _batches(reader: pacsv.CSVStreamingReader, path: Path):
    """The reader's record batches; a row CSV cannot read (corrupt data mid-file) is an IngestError."""
    while True:
        try:
            yield reader.read_next_batch()
        except StopIteration:
            return
        except pa.ArrowInvalid as err:
            raise IngestError(f"{path}: a row is not k6's CSV ({str(err).splitlines()[0][:200]}); the file is "
                              "corrupt beyond its last complete row") from None


def _check_header(path: Path) -> None:
    stream = _open_samples(path)
    try:
        header = stream.read(4096).split(b"\n", 1)[0].decode(errors="replace").strip()
    finally:
        stream.close()
    if not header:
        raise IngestError(f"{path}: no complete row in it (k6 stopped before writing one)")
    missing = [c for c in _USED if c not in header.split(",")]
    if missing:
        raise IngestError(f"{path}: the CSV lacks k6's columns {missing}; was it written by `k6 run --out csv=...`?")


def _timestamp_ms(ts: pa.Array) -> pa.Array:
    # k6 writes whole seconds unless K6_CSV_TIME_FORMAT=unix_milli; accept both.
    if len(ts) and pc.max(ts).as_py() < 10_000_000_000:
        return pc.multiply(ts, 1000)
    return ts


def _tag(column: pa.Array, pattern: str) -> pa.Array:
    """The value of one key of a `k=v&k=v` column (extra_tags, metadata); "" where absent."""
    values = pc.struct_field(pc.extract_regex(pc.fill_null(column, ""), pattern), [0])
    return pc.fill_null(values, "")


def request_keys(table: pa.Table) -> pa.Array:
    """Per row: the key that ties a request's samples to its `graphql_errors` sample: the metadata
    `request` and the tag `writer` ("" for a row without `request` metadata: never matched)."""
    request = _tag(table.column("metadata"), _REQUEST)
    keys = pc.binary_join_element_wise(request, _tag(table.column("extra_tags"), _WRITER), "#")
    return pc.if_else(pc.equal(request, ""), "", keys)


def operations_of(table: pa.Table) -> pa.Array:
    """Per row: its `operation` tag ("untagged" where absent)."""
    op = pc.struct_field(pc.extract_regex(table.column("extra_tags"), _OPERATION), [0])
    return pc.if_else(pc.is_valid(op), op, "untagged")


def metric_rows(csv_path: Path, metrics: tuple[str, ...], *, block_size: int = 16 << 20, report: dict | None = None):
    """Streams the rows of the named metrics from a k6 CSV output (gzip or plain; a truncated file is
    read up to its last complete row), as pyarrow tables with the columns of `_USED` and `_OPTIONAL`
    (missing optional ones as ""). A generator; raises IngestError for a file that is not k6's CSV.
    When the file is cut, `report["truncated"]` says why once the rows are read."""
    csv_path = Path(csv_path)
    if not csv_path.exists():
        raise IngestError(f"{csv_path}: k6 wrote no samples file")
    _check_header(csv_path)
    stream = _open_samples(csv_path)
    with stream:
        for batch in _batches(_reader(csv_path, block_size, stream), csv_path):
            names = batch.column("metric_name").cast(pa.string())
            mask = pc.is_in(names, value_set=pa.array(list(metrics), pa.string()))
            rows = pa.Table.from_batches([batch]).filter(mask)
            if rows.num_rows:
                for name in _OPTIONAL:
                    rows = rows.set_column(rows.schema.get_field_index(name), name, pc.fill_null(rows.column(name), ""))
                yield rows
    if report is not None:
        report["truncated"] = getattr(stream, "truncated", None)


def _count(into: dict[str, dict[str, int]], operations, codes) -> None:
    for op, code in zip(operations, codes, strict=True):
        inner = into.setdefault(op, {})
        inner[code] = inner.get(code, 0) + 1


def ingest(csv_path: Path, out_dir: Path, *, bucket_seconds: int = 10, block_size: int = 16 << 20) -> IngestResult:
    csv_path, out_dir = Path(csv_path), Path(out_dir)
    if not csv_path.exists():
        raise IngestError(f"{csv_path}: k6 wrote no samples file")
    _check_header(csv_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    requests_path = out_dir / "requests.parquet"
    parts: dict[str, list[np.ndarray]] = {"time": [], "op": [], "duration": [], "failed": []}
    tables: list[pa.Table] = []
    keys: list[np.ndarray] = []
    failure_codes: list[np.ndarray] = []
    error_keys: set[str] = set()
    errors: dict[str, dict[str, int]] = {}
    rows_written: dict[str, int] = {}
    check_ops: list[np.ndarray] = []
    check_values: list[np.ndarray] = []
    iterations = dropped = 0
    stream = _open_samples(csv_path)
    with stream:
        for batch in _batches(_reader(csv_path, block_size, stream), csv_path):
            names = batch.column("metric_name").cast(pa.string())
            is_request = pc.equal(names, "http_req_duration")
            is_check = pc.equal(names, "checks")
            iterations += int(pc.sum(pc.equal(names, "iterations")).as_py() or 0)
            dropped_rows = pc.filter(batch.column("metric_value"), pc.equal(names, "dropped_iterations"))
            dropped += int(pc.sum(dropped_rows).as_py() or 0)

            req = batch.filter(is_request)
            if req.num_rows:
                operation = operations_of(req)
                status = pc.cast(pc.if_else(pc.equal(req.column("status"), ""), "0", req.column("status")), pa.int32())
                table = pa.table({
                    "time_ms": _timestamp_ms(req.column("timestamp")),
                    "scenario": req.column("scenario").cast(pa.dictionary(pa.int32(), pa.string())),
                    "operation": pc.dictionary_encode(operation),
                    "status": status,
                    "duration_ms": req.column("metric_value"),
                    "failed": pc.not_equal(req.column("expected_response"), "true"),
                }, schema=REQUEST_SCHEMA)
                tables.append(table)
                keys.append(np.asarray(request_keys(req).to_numpy(zero_copy_only=False), dtype=object))
                # A request that failed in HTTP: its status, or k6's own code when no answer came.
                k6_code = pc.fill_null(req.column("error_code"), "")
                http_code = pc.binary_join_element_wise("HTTP_", pc.cast(status, pa.string()), "")
                code = pc.if_else(pc.and_(pc.equal(status, 0), pc.not_equal(k6_code, "")),
                                  pc.binary_join_element_wise("K6_", k6_code, ""), http_code)
                failure_codes.append(np.asarray(code.to_numpy(zero_copy_only=False), dtype=object))
                parts["time"].append(table.column("time_ms").to_numpy())
                parts["op"].append(np.asarray(operation.to_numpy(zero_copy_only=False), dtype=object))
                parts["duration"].append(table.column("duration_ms").to_numpy())
                parts["failed"].append(table.column("failed").to_numpy(zero_copy_only=False))
            chk = batch.filter(is_check)
            if chk.num_rows:
                check_ops.append(np.asarray(operations_of(chk).to_numpy(zero_copy_only=False), dtype=object))
                check_values.append(chk.column("metric_value").to_numpy())
            bad = batch.filter(pc.and_(pc.equal(names, GRAPHQL_ERRORS), pc.greater(batch.column("metric_value"), 0)))
            if bad.num_rows:
                bad_keys = request_keys(bad).to_pylist()
                error_keys.update(k for k in bad_keys if k)
                codes = pc.fill_null(bad.column("error_code"), "").to_pylist()
                _count(errors, operations_of(bad).to_pylist(), [c or "UNKNOWN" for c in codes])
            written = batch.filter(pc.equal(names, ROWS_WRITTEN))
            if written.num_rows:
                for op, value in zip(operations_of(written).to_pylist(), written.column("metric_value").to_pylist(),
                                     strict=True):
                    rows_written[op] = rows_written.get(op, 0) + int(round(value))

    # A request whose GraphQL error came in a later block is found here: its rows are marked failed.
    all_keys = _concat(keys, object)
    graphql_failed = (pd.Series(all_keys).isin(error_keys).to_numpy() if error_keys
                      else np.zeros(len(all_keys), dtype=bool))
    http_failed = _concat(parts["failed"], bool)
    _count(errors, _concat(parts["op"], object)[http_failed].tolist(), _concat(failure_codes, object)[http_failed].tolist())
    parts["failed"] = [http_failed | graphql_failed]
    with pq.ParquetWriter(requests_path, REQUEST_SCHEMA, compression="zstd") as writer:
        offset = 0
        for table in tables:
            n = table.num_rows
            failed = pa.array(parts["failed"][0][offset:offset + n], pa.bool_())
            writer.write_table(table.set_column(table.schema.get_field_index("failed"), "failed", failed))
            offset += n

    frame = pd.DataFrame({
        "time_ms": _concat(parts["time"], np.int64),
        "operation": pd.Categorical(_concat(parts["op"], object)),
        "duration_ms": _concat(parts["duration"], np.float64),
        "failed": _concat(parts["failed"], bool),
    })
    checks = pd.DataFrame({"operation": _concat(check_ops, object), "passed": _concat(check_values, np.float64)})
    first = int(frame["time_ms"].min()) if len(frame) else None
    last = int(frame["time_ms"].max()) if len(frame) else None
    operations = aggregate(frame, checks, seconds=((last - first) / 1000.0) if first is not None else 0.0)
    timeseries = time_series(frame, bucket_seconds, first)
    operations_path = out_dir / "operations.parquet"
    timeseries_path = out_dir / "timeseries.parquet"
    operations.to_parquet(operations_path, index=False)
    timeseries.to_parquet(timeseries_path, index=False)
    return IngestResult(
        requests=len(frame), operations=operations, timeseries=timeseries, iterations=iterations,
        dropped_iterations=dropped, first_ms=first, last_ms=last, requests_path=requests_path,
        operations_path=operations_path, timeseries_path=timeseries_path,
        truncated=getattr(stream, "truncated", None), errors=errors, rows_written=rows_written,
    )


def _concat(arrays: list[np.ndarray], dtype) -> np.ndarray:
    return np.concatenate(arrays).astype(dtype, copy=False) if arrays else np.array([], dtype=dtype)


def _latencies(durations: np.ndarray) -> dict:
    """p50/p90/p95/p99/max/mean of `durations` (successful requests only); NaN when there are none."""
    if len(durations) == 0:
        return {**{f"p{p}": np.nan for p in PERCENTILES}, "max": np.nan, "mean": np.nan}
    quantiles = np.percentile(durations, PERCENTILES, method="linear")
    return {
        **{f"p{p}": float(q) for p, q in zip(PERCENTILES, quantiles, strict=True)},
        "max": float(durations.max()),
        "mean": float(durations.mean()),
    }


def _summary(durations: np.ndarray, failed: np.ndarray, seconds: float) -> dict:
    count = len(durations)
    failed = failed.astype(bool, copy=False)
    bad = durations[failed]
    return {
        "count": count,
        "rate": count / seconds if seconds > 0 else float(count),
        "error_rate": float(failed.mean()) if count else 0.0,
        **_latencies(durations[~failed]),
        "failed_p50": float(np.median(bad)) if len(bad) else np.nan,
    }


def aggregate(frame: pd.DataFrame, checks: pd.DataFrame, seconds: float) -> pd.DataFrame:
    """Per-operation count, rate, error rate, latencies, failed_p50 and check pass rate; `__all__` too.

    Latencies are of successful requests only (NaN when none succeeded); `count`, `rate` and
    `error_rate` count every request; `failed_p50` is the median duration of the failed ones
    (NaN when none failed).
    """
    rows = []
    durations = frame["duration_ms"].to_numpy()
    failed = frame["failed"].to_numpy()
    codes = frame["operation"].cat.codes.to_numpy() if len(frame) else np.array([], dtype=np.int8)
    for code, name in enumerate(frame["operation"].cat.categories if len(frame) else []):
        mask = codes == code
        rows.append({"operation": name, **_summary(durations[mask], failed[mask], seconds)})
    rows.append({"operation": "__all__", **_summary(durations, failed, seconds)})
    result = pd.DataFrame(rows)
    pass_rates = checks.groupby("operation")["passed"].mean() if len(checks) else pd.Series(dtype=float)
    result["check_pass_rate"] = result["operation"].map(pass_rates)
    if len(checks):
        result.loc[result["operation"] == "__all__", "check_pass_rate"] = checks["passed"].mean()
    return result


def time_series(frame: pd.DataFrame, bucket_seconds: int, first_ms: int | None) -> pd.DataFrame:
    """Per bucket and operation: count, rate and error rate of every request, latencies of the successful ones."""
    columns = ["bucket_start_s", "operation", "count", "rate", "error_rate", "p50", "p95", "p99"]
    if first_ms is None or not len(frame):
        return pd.DataFrame(columns=columns)
    bucket = ((frame["time_ms"].to_numpy() - first_ms) // (bucket_seconds * 1000)) * bucket_seconds
    # A failed request's duration is NaN here, which the quantiles skip (all NaN: NaN).
    successful = frame["duration_ms"].where(~frame["failed"].astype(bool))
    grouped = frame.assign(bucket_start_s=bucket, successful_ms=successful).groupby(
        ["bucket_start_s", "operation"], observed=True)
    durations = grouped["successful_ms"]
    result = pd.DataFrame({
        "count": grouped.size(),
        "error_rate": grouped["failed"].mean(),
        "p50": durations.quantile(0.50),
        "p95": durations.quantile(0.95),
        "p99": durations.quantile(0.99),
    }).reset_index()
    result["rate"] = result["count"] / bucket_seconds
    result["operation"] = result["operation"].astype(str)
    return result[columns]
