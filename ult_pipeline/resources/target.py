"""The load-test target: its GraphQL API, its database, its identity tokens, its results folder."""


from pathlib import Path
from urllib.parse import quote

import dagster as dg
from pydantic import Field

from ult_pipeline.analysis.history_store import HistoryStore, safe_key
from ult_pipeline.seeding.identities import DEV_ISSUER, DEV_SECRET, TokenSigner
from ult_pipeline.seeding.seeder import DEFAULT_CONCURRENCY
from ult_pipeline.target_api.client import GraphQLClient
from ult_pipeline.target_db.statistics import refresh_statistics
from ult_pipeline.target_db.wipe import RECREATE, STRATEGIES, TargetCheck, WipeResult, wipe


class TargetApiResource(dg.ConfigurableResource):
    """The user-service's GraphQL endpoint, called with the API key (super-admin)."""

    url: str = Field(description="GraphQL URL, e.g. http://127.0.0.1:18080/user/")
    api_key: str = Field(description="USER_SERVICE_API_KEY of the target; bind with EnvVar")
    timeout_s: float = 30.0
    retries: int = Field(default=4, description="retries of connection errors and 5xx, with backoff")
    concurrency: int = Field(default=DEFAULT_CONCURRENCY, description="seeding calls in flight at once")

    def client(self) -> GraphQLClient:
        return GraphQLClient(self.url, api_key=self.api_key, timeout=self.timeout_s, retries=self.retries)


class TargetDatabaseResource(dg.ConfigurableResource):
    """Direct access to the target's PostgreSQL, for the guarded wipe."""

    dsn: str = Field(description="libpq DSN of the target database; bind with EnvVar")
    environment: str = Field(description="load-test environment name the database must be marked with")
    db_schema: str = "public"
    wipe_strategy: str = Field(default=RECREATE, description=f"one of {', '.join(STRATEGIES)}")
    in_place_sql_file: str | None = Field(default=None, description="SQL of the in_place wipe (default: the "
                                          "TRUNCATE plan of target_db/in_place.py)")

    def wipe(self, restart_service, behind: TargetCheck, log=None) -> WipeResult:
        """The guarded wipe; ``behind`` proves this database is the one behind the target API (see wipe.py).
        ``log`` gets the wipe's progress lines when it runs longer than a few seconds."""
        return wipe(
            self.dsn, self.environment, strategy=self.wipe_strategy, db_schema=self.db_schema,
            sql_file=Path(self.in_place_sql_file) if self.in_place_sql_file else None,
            restart_service=restart_service, behind=behind, log=log,
        )

    def refresh_statistics(self) -> tuple[int, float]:
        """ANALYZE the service's tables after seeding: (tables, seconds)."""
        return refresh_statistics(self.dsn, self.db_schema)


class TokenSignerResource(dg.ConfigurableResource):
    """Signs the students' and teachers' tokens; default: the service's development issuer."""

    issuer: str = DEV_ISSUER
    algorithm: str = "HS256"
    key: str = Field(default=DEV_SECRET, description="secret or private key (PEM); bind with EnvVar")
    lifetime_s: int = Field(default=86400, gt=0, description="tokens' `exp`, seconds after signing: must cover "
                            "the load test and its A/B confirmation runs; a copied identities file stops working")

    def signer(self) -> TokenSigner:
        return TokenSigner(self.issuer, self.algorithm, self.key, lifetime_s=self.lifetime_s)


# The history store's folder under the results store's base folder (no partition key is named this).
HISTORY_FOLDER = "history"
# The write tests' histories, beside the read test's: each is a history of its own (its builds x
# operations x metrics, its fingerprints), judged on its own, never mixed with the reads'.
WRITES_HISTORY_FOLDER = "history-writes"
CONTENTION_HISTORY_FOLDER = "history-contention"
HISTORY_FOLDERS = (HISTORY_FOLDER, WRITES_HISTORY_FOLDER, CONTENTION_HISTORY_FOLDER)


class ResultsStoreResource(dg.ConfigurableResource):
    """A folder per build partition for files that k6 and people read (identities, samples)."""

    base_dir: str = "~/.ult/results"
    base_url: str | None = None  # where base_dir is served over HTTP (ULT_RESULTS_URL), for links from the UI

    def url_of(self, path: Path) -> str | None:
        """The HTTP URL of `path` (a file under base_dir) when base_url is set, else None.

        Raises ValueError for a path outside base_dir (it is not served).
        """
        if not self.base_url:
            return None
        relative = Path(path).expanduser().resolve().relative_to(Path(self.base_dir).expanduser().resolve())
        return self.base_url.rstrip("/") + "/" + "/".join(quote(part) for part in relative.parts)

    def partition_dir(self, partition_key: str) -> Path:
        path = Path(self.base_dir).expanduser() / safe_key(partition_key)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def history_store(self, folder: str = HISTORY_FOLDER) -> HistoryStore:
        """A history across builds: the read test's by default (`<base_dir>/history`: `k6_results`
        records each complete build, the analysis reads it back), or one of the write tests'
        (`WRITES_HISTORY_FOLDER`, `CONTENTION_HISTORY_FOLDER`)."""
        if folder not in HISTORY_FOLDERS:
            raise ValueError(f"unknown history {folder!r}; known: {', '.join(HISTORY_FOLDERS)}")
        return HistoryStore(Path(self.base_dir).expanduser() / folder)
