"""One settings class for the whole service, read from `RLHF_REGISTRY_*` environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RLHF_REGISTRY_", extra="ignore")

    environment: Literal["development", "production"] = "development"
    data_dir: Path = Path("./data")
    database_url: str = ""
    blob_url: str = ""
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: SecretStr | None = None
    s3_secret_access_key: SecretStr | None = None
    # an unreachable S3 store answers 503 within seconds: short timeouts, few attempts per call
    s3_connect_timeout_seconds: float = 2.0
    s3_read_timeout_seconds: float = 20.0
    s3_max_attempts: int = 3
    # the API's sweep of blob-store leftovers (incomplete multipart uploads, temporary objects); 0: off
    blob_gc_interval_seconds: float = 3600.0
    blob_gc_older_than_hours: float = 24.0
    broker_url: str = ""
    signing_key: SecretStr | None = None
    signing_key_file: Path | None = None
    # the host name clients reach this deployment by, without a scheme (e.g. `registry.example.com`)
    public_host: str = "localhost:8000"
    # the origin line of signed audit checkpoints; unset: `<public_host>/audit`
    audit_origin: str = ""
    # the longest an audit event should wait after its commit before the sequencer puts it in the tree
    # (and so in checkpoints and proofs); the sequencer looks for new events twice per delay
    audit_merge_delay_seconds: float = 1.0
    max_json_body_bytes: int = 32 * 1024 * 1024
    max_blob_bytes: int = 64 * 1024 * 1024 * 1024
    # files one model folder (a base model or checkpoint) may list; more are refused with 422
    max_folder_files: int = 100_000
    # rows one registration may hold (prompts of a prompt set, items of an annotation batch), inline,
    # JSONL or Parquet alike, and the bytes of text one row may hold; more is refused with 413
    max_batch_rows: int = 1_000_000
    max_row_bytes: int = 1024 * 1024
    # writes (POST, PUT, PATCH, DELETE) per minute per token, in bursts of up to as many; 0: no limit.
    # Each replica counts for itself (the buckets live in the process).
    write_rate_limit: int = 0
    blob_redirect: bool = False
    metrics_require_admin: bool = False
    # production: /metrics needs a token unless opened here explicitly
    metrics_public: bool = False
    # the longest lifetime of a token created through the API, in days (also its default); None: no limit
    token_max_days: int | None = None
    log_level: str = "INFO"
    db_pool_size: int = 10
    run_max_attempts: int = 1
    # how long the token of an external run (trained elsewhere, reported here) lives, unless the run ends first
    external_run_token_days: int = 7
    run_lease_seconds: float = 60.0
    # the most devices (processes, one a GPU where there are GPUs) a run may ask for in `params.devices`
    run_max_devices: int = 8
    # the longest a run trained on several devices may take before its process group is killed
    run_launch_timeout_seconds: float = 24 * 3600.0
    reaper_interval_seconds: float = 15.0
    # the run outbox: how often queued runs are looked at, and the backoff of each run's re-sends
    dispatch_interval_seconds: float = 5.0
    dispatch_backoff_seconds: float = 30.0
    dispatch_backoff_max_seconds: float = 600.0
    broker_check_timeout_seconds: float = 1.0
    worker_id: str = ""
    # whether a worker of the PPO environment (workers/ppo: the last TRL that ships PPOTrainer) consumes the
    # `ppo` queue; while none does, a `ppo` run is refused rather than left queued with no worker to take it
    ppo_workers: bool = False

    @model_validator(mode="after")
    def _fill_embedded_defaults(self) -> Settings:
        data = self.data_dir.resolve()
        if not self.database_url:
            self.database_url = f"sqlite:///{data / 'registry.db'}"
        if not self.blob_url:
            self.blob_url = f"file://{data / 'blobs'}"
        if not self.broker_url:
            self.broker_url = f"sqla+sqlite:///{data / 'broker.db'}"
        if not self.audit_origin:
            self.audit_origin = f"{self.public_host}/audit"
        if self.signing_key is None and self.signing_key_file is None:
            self.signing_key_file = data / "signing_key.pem"
        if (
            self.environment == "production"
            and self.signing_key is None
            and self.signing_key_file == (data / "signing_key.pem")
        ):
            raise ValueError(
                "production needs RLHF_REGISTRY_SIGNING_KEY or RLHF_REGISTRY_SIGNING_KEY_FILE "
                "(a generated development key is refused outside development)"
            )
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    return Settings()
