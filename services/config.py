"""Settings, read once from ``MATERIALS_*`` environment variables and passed down.

No other module reads the environment; create one ``Settings`` and hand it to whoever needs it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import tempfile
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.private_files import make_private_dir

_PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret", "dev"}

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _parse_networks(value: str) -> tuple[IPNetwork, ...]:
    """``10.0.0.5, 172.31.240.0/24`` as networks; anything else is a ValueError naming it."""
    networks = []
    for entry in (part.strip() for part in value.split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError as exc:
            raise ValueError(f"not an IP address or network: {entry!r}") from exc
    return tuple(networks)


class Settings(BaseSettings):
    """Every setting of the service; the names are the stable ``MATERIALS_`` variables."""

    model_config = SettingsConfigDict(env_prefix="MATERIALS_", extra="ignore")

    data_dir: Path = Path("./data")
    database_url: str | None = None
    s3_endpoint: str | None = None
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    s3_bucket: str = "materials"
    s3_secure: bool = False
    # Downloads answer 302 to a presigned object-store URL; set false when clients cannot reach
    # the store, and downloads stream through the API instead.
    s3_presigned_downloads: bool = True
    download_url_seconds: int = Field(default=300, gt=0, le=7 * 24 * 3600)
    elasticsearch_url: str | None = None
    # The alias searches and writes go through; `materials reindex` moves it to a new index.
    elasticsearch_index: str = Field(default="materials", pattern=r"^[a-z0-9][a-z0-9_.-]{0,100}$")
    elasticsearch_timeout_seconds: float = Field(default=10.0, gt=0)
    max_upload_bytes: int = Field(default=512 * 1024 * 1024, gt=0)
    # Every other request body (JSON, forms): larger ones are refused (413) before they are read,
    # parsed or their sender authenticated.
    max_body_bytes: int = Field(default=64 * 1024, gt=0)
    # The address users reach the service at (e.g. https://materials.example.gov.cn); https
    # turns on Strict-Transport-Security.
    public_url: str | None = Field(default=None, pattern=r"^https?://[^\s/]+")
    # Proxies (IP addresses or CIDR networks, comma separated) whose X-Forwarded-For and
    # X-Forwarded-Proto are believed; empty: none, the connection's peer is the client.
    trusted_proxies: str = ""
    secret_key: str | None = None
    token_ttl_seconds: int = Field(default=8 * 3600, gt=0)
    # A browser session ends after this long without a request (and at token_ttl_seconds anyway).
    session_idle_seconds: int = Field(default=30 * 60, gt=0)
    # Session cookies carry the Secure flag: None decides by the request (HTTPS, also behind a
    # proxy that says so with X-Forwarded-Proto); set true behind a TLS proxy that does not.
    cookie_secure: bool | None = None
    # Extra MIME types accepted on upload, beyond the built-in allow-list (comma separated).
    extra_allowed_types: str = ""
    # Login protection (services.login_guard). After login_max_failures failed logins on one
    # account from one address, that address waits login_delay_seconds before its next try on
    # it, twice as long after each further failure, at most login_max_delay_seconds (429 with
    # Retry-After); other addresses are not held up. After login_account_max_failures on one
    # account, only addresses without a recent failure on it try without waiting; after
    # login_address_max_failures from one address (any usernames), that address waits. Counts
    # start again after login_window_seconds without a failure.
    login_max_failures: int = Field(default=5, gt=0)
    login_window_seconds: int = Field(default=15 * 60, gt=0)
    login_delay_seconds: float = Field(default=1.0, gt=0)
    login_max_delay_seconds: float = Field(default=300.0, gt=0)
    login_account_max_failures: int = Field(default=10, gt=0)
    login_address_max_failures: int = Field(default=20, gt=0)
    # Refusals that come in floods (failed logins, bad tokens): the first of a kind from one
    # address is an audit event at once, the rest within this many seconds one event with a count.
    audit_burst_seconds: float = Field(default=60.0, gt=0)
    # The provable audit log. Events get their sequence number from a sequencer (one at a time,
    # by a lease in the database; it runs wherever an index worker runs), which signs a
    # checkpoint every `audit_checkpoint_events` events or `audit_checkpoint_seconds`, whichever
    # comes first, with the Ed25519 key in `audit_signing_key_file` (PKCS#8 PEM). Embedded mode
    # makes that key beside the data directory; production keeps it out of the database's reach.
    audit_signing_key_file: Path | None = None
    # The note verifier key (`name+keyid+base64`, as GET /audit/public-key shows it) for
    # processes without the signing key; by default derived from the signing key's file.
    audit_public_key: str | None = None
    audit_log_origin: str = Field(default="materials.county/audit", pattern=r"^[^\s+]{1,200}$")
    audit_checkpoint_events: int = Field(default=1000, ge=1)
    audit_checkpoint_seconds: float = Field(default=1.0, gt=0)
    audit_sequencer_batch: int = Field(default=2000, ge=1)
    audit_sequencer_lease_seconds: float = Field(default=10.0, gt=0)
    # How long a receipt waits for its upload event to be covered by a signed checkpoint before
    # it answers `pending` (the sequencer signs within `audit_checkpoint_seconds`).
    audit_receipt_wait_seconds: float = Field(default=3.0, ge=0)
    # No event younger than this can be removed by any command (at least six months).
    audit_retention_days: int = Field(default=184, ge=184)
    # Blobs without a document row younger than this are an upload in flight, not an orphan.
    orphan_grace_seconds: int = Field(default=3600, ge=0)
    # How often the worker runs the cheap consistency check with repair (blobs by size, orphans
    # past the grace period swept, stuck outbox events made due); 0 turns it off.
    check_interval_seconds: float = Field(default=3600.0, ge=0)
    # argon2id cost of password hashes (argon2-cffi's defaults, RFC 9106 low-memory profile).
    password_time_cost: int = Field(default=3, ge=1)
    password_memory_kib: int = Field(default=65536, ge=64)
    # The burden figures: hours a department saves for each request answered from the repository
    # or joined to another, and for each reuse of a document (a department's first download).
    hours_per_request: float = Field(default=2.0, ge=0)
    hours_per_reuse: float = Field(default=0.5, ge=0)
    # How long an index worker's claim on an outbox event lasts; the worker renews it every
    # third of it while the work goes on, so a dead worker's events come free within one lease.
    index_lease_seconds: float = Field(default=20.0, ge=3, le=600)
    # How often the worker looks for requests nearing or past their due date.
    due_check_seconds: float = Field(default=60.0, gt=0)
    # Pages of a scanned PDF recognised with Tesseract OCR (0 turns OCR off, photos included);
    # all of it still within the extraction's time limit per file.
    ocr_max_pages: int = Field(default=20, ge=0)
    # ClamAV's daemon, `host:port` or a Unix socket path: every stored file is scanned before it
    # is indexed or served. Unset: files are "unscanned", and `serve_unscanned` decides.
    clamd_address: str | None = None
    clamd_timeout_seconds: float = Field(default=120.0, gt=0)
    # Whether files no scanner has checked (no clamd configured, or beyond its size limits) are
    # indexed and served. Production with clamd sets this to false.
    serve_unscanned: bool = True
    # How often each process reads the county dictionary (organisation, catalog item and category
    # names and the admins' words) to segment with it; a change reaches every process within this.
    dictionary_check_seconds: float = Field(default=5.0, ge=0)
    production: bool = False
    # Run an index worker thread inside the API process (embedded mode). Production runs
    # `materials worker` processes instead and sets this to false.
    embedded_worker: bool = True
    # Logging of every process (services/logging_setup.py): the least level written, and
    # `text` lines or `json` objects, one a line, on standard error.
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    # GET /metrics (Prometheus) answers 404 while unset; set, it wants `Authorization: Bearer`
    # with this token (at least 16 characters).
    metrics_token: str | None = Field(default=None, min_length=16, pattern=r"^\S+$")

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @property
    def audit_key_path(self) -> Path:
        """The signing key's file: the configured one, or one beside the data directory."""
        if self.audit_signing_key_file is not None:
            return self.audit_signing_key_file.expanduser().resolve()
        return self.data_dir.with_name(f"{self.data_dir.name}-audit-signing-key.pem")

    @property
    def resolved_database_url(self) -> str:
        """The SQLAlchemy URL: the configured one, or a SQLite file in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.embedded_database}"

    @property
    def embedded_database(self) -> Path:
        """The SQLite file of embedded mode (used when no database URL is configured)."""
        return self.data_dir / "materials.sqlite3"

    @field_validator("public_url", "metrics_token", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _any_case(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        value = value.strip()
        return value.lower() if value.lower() in ("text", "json") else value.upper()

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        _parse_networks(value)  # refused at start, not at the first proxied request
        return value

    @property
    def trusted_proxy_networks(self) -> tuple[IPNetwork, ...]:
        return _parse_networks(self.trusted_proxies)

    @property
    def https(self) -> bool:
        """Is the service published over HTTPS (``public_url``)?"""
        return (self.public_url or "").lower().startswith("https://")

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "spool"

    @property
    def allowed_extra_types(self) -> frozenset[str]:
        return frozenset(
            t.strip().lower() for t in self.extra_allowed_types.split(",") if t.strip()
        )

    def signing_key(self) -> str:
        """The token signing key: configured, or generated once and kept in the data directory.

        Production (``MATERIALS_PRODUCTION=true``) refuses a missing or placeholder key, because a
        key stored beside the data is readable by anyone who can read the data.
        """
        if (
            self.secret_key is not None
            and self.secret_key.strip().lower() not in _PLACEHOLDER_SECRETS
        ):
            if len(self.secret_key) < 32:
                raise ValueError("MATERIALS_SECRET_KEY must be at least 32 characters")
            return self.secret_key
        if self.production:
            raise ValueError("MATERIALS_SECRET_KEY must be set to a real secret in production")
        path = self.data_dir / "secret_key"
        if not path.exists():
            make_private_dir(self.data_dir)
            # Several processes may start at once (`serve --workers N`): each writes a candidate
            # to a file of its own and links it into place; the first link wins, the others then
            # read the winner's key. A reader never sees a half-written file.
            fd, candidate = tempfile.mkstemp(dir=self.data_dir, prefix=".secret_key-")
            try:
                with os.fdopen(fd, "w", encoding="ascii") as out:
                    out.write(secrets.token_urlsafe(48))
                    out.flush()
                    os.fsync(out.fileno())
                with contextlib.suppress(FileExistsError):
                    os.link(candidate, path)
            finally:
                os.unlink(candidate)
        return path.read_text(encoding="ascii").strip()
