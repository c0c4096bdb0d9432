"""Every setting in one place, read from CONVSCOPE_* environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from engine.cpus import usable_cpus

MAX_WORKERS = 64


def default_workers() -> int:
    """One worker per usable core (the engine is CPU-bound NumPy, so more processes only contend),
    never more than the cap: a 128-core machine starts 64, it does not fail."""
    return min(usable_cpus(), MAX_WORKERS)


class Settings(BaseSettings):
    """Deployment settings; each can be set as ``CONVSCOPE_<NAME>`` (e.g. ``CONVSCOPE_PORT=9000``)."""

    model_config = SettingsConfigDict(env_prefix="CONVSCOPE_", extra="ignore")

    host: str = Field("127.0.0.1", description="address uvicorn binds")
    port: int = Field(8000, ge=1, le=65535)
    workers: int = Field(default_factory=default_workers, ge=1, le=MAX_WORKERS, description="uvicorn worker processes")
    threads: int = Field(4, ge=1, le=64, description="requests computed at once in each worker")
    log_level: str = Field("info", pattern="^(critical|error|warning|info|debug)$")
    max_body_bytes: int = Field(16 * 1024 * 1024, ge=1024, description="largest request body accepted (413 beyond)")
    max_image_pixels: int = Field(40_000_000, ge=1, description="decoded images larger than this are refused")
    max_filter_side: int = Field(1024, ge=16, description="filter inputs are downscaled to this longer side")
    max_decoded_bytes: int = Field(
        32 * 1024 * 1024, ge=1024, description="largest picture once decoded, in bytes (JPEGs decode at reduced scale)"
    )
    max_image_side: int = Field(20_000, ge=64, description="longest side of a picture, in pixels")
    max_aspect: float = Field(
        50, ge=1, description="how many times longer than wide (or wide than long) a picture may be"
    )
    request_timeout_seconds: float = Field(10.0, gt=0, description="time budget of one CPU-heavy request")
    queue_seconds: float = Field(
        2.0, gt=0, description="how long a CPU-heavy request may wait for a compute slot before 503"
    )
    max_header_bytes: int = Field(64 * 1024, ge=4096, le=1 << 24, description="largest request head (431 beyond)")
    max_header_count: int = Field(100, ge=10, le=10_000, description="most request headers (431 beyond)")
    cors_origins: list[str] = Field(default_factory=list, description="origins allowed to call the API from a browser")
    trusted_hosts: list[str] = Field(
        default_factory=lambda: ["*"], description='Host header values served (e.g. ["convscope.example.org"])'
    )
    weights_path: str | None = Field(None, description="LeNet weights .npz (default: the shipped model)")

    # -- sizes a caller controls (the README's "Limits") --
    pixels_min_side: int = Field(8, ge=2, description="smallest side of a picture to classify")
    pixels_max_side: int = Field(1024, ge=16, description="pictures to classify are shrunk to this longer side")
    grid_side: int = Field(64, ge=4, le=1024, description="largest /api/convolve and /api/pool grid side")
    grid_channels: int = Field(8, ge=1, le=64, description="most channels of a /api/convolve grid")
    grid_filters: int = Field(6, ge=1, le=16, description="most filters of one /api/convolve volume (lecture: 6)")
    kernel_side: int = Field(15, ge=3, le=63, description="largest kernel side (grids and filters)")
    max_grid_stride: int = Field(16, ge=1, description="largest stride of /api/convolve and /api/pool")
    max_grid_padding: int = Field(16, ge=0, description="largest padding of /api/convolve")
    max_grid_dilation: int = Field(8, ge=1, description="largest dilation of /api/convolve and filters")
    max_filter_stride: int = Field(8, ge=1, description="largest stride of /api/filters/apply")
    frame_side: int = Field(
        384, ge=8, description="largest side of a network input sent as `frame` (an imported model's, up to 384)"
    )
    max_step_values: int = Field(200_000, ge=1000, description="products listed across all animation steps")
    max_grid_value: float = Field(
        1e9, gt=0, le=1e12, description="largest |value| in grids, kernels and biases (sums stay exact, never overflow)"
    )

    # -- training jobs --
    data_dir: Path = Field(Path("var"), description="where the SQLite store lives (created on start)")
    store_url: str | None = Field(
        None,
        description="sqlite:///path.db (default: CONVSCOPE_DATA_DIR/convscope.db) or redis://host:port/db",
        pattern=r"^(sqlite:///|redis://|rediss://|unix://)",
    )
    embedded_worker: bool = Field(True, description="`convscope serve` also starts one training worker")
    training_slots: int = Field(1, ge=1, le=16, description="jobs trained at once per training worker")
    helper_processes: bool = Field(
        True, description="a training step on 2+ cores computes its slices in helper processes (off: threads)"
    )
    max_queued_jobs: int = Field(500, ge=1, le=100_000, description="queued jobs in all before submissions get 429")
    max_training_seconds: float = Field(
        600, gt=0, le=86_400, description="a job running longer fails; one estimated longer is refused"
    )
    model_ttl_days: float = Field(30, gt=0, description="trained models older than this are deleted")
    job_stale_seconds: float = Field(
        20, gt=0, le=3600, description="a running job whose worker is silent this long is ended as failed"
    )
    max_parameters: int = Field(500_000, ge=1, le=50_000_000, description="largest network trained")
    max_layers: int = Field(
        64, ge=1, le=256, description="most layers in a trained network's spec (a residual block is 7 to 9)"
    )
    max_multiply_adds: int = Field(
        20_000_000, ge=1, description="most multiply-adds one picture may cost a trained network"
    )
    max_training_bytes: int = Field(
        1024 * 1024 * 1024,
        ge=1024 * 1024,
        description="memory one training batch may take: every layer's output and its gradient, times the batch",
    )
    max_class_members: int = Field(300, ge=2, le=10_000, description="most workspaces in one class")
    max_classes_per_workspace: int = Field(20, ge=1, le=1000, description="most classes one workspace is in")
    max_entries_per_student: int = Field(5, ge=1, le=100, description="challenge entries per student")
    max_class_publications: int = Field(20, ge=1, le=200, description="models and designs one class holds")
    class_poll_seconds: float = Field(1.0, gt=0, le=30, description="how often a lecturer's live view is re-read")
    challenge_test_size: int = Field(400, ge=50, le=2000, description="held-out test pictures a challenge scores on")
    class_code_delay_seconds: float = Field(
        0.5, ge=0, le=5, description="every wrong class code is answered after this long (guessing is slow)"
    )
    class_code_failures_per_address: int = Field(
        1500,
        ge=1,
        description="wrong class codes and lecturer tokens one address may send in ten minutes before 429 (a "
        "flood guard: 300 students behind one school address, each mistyping a few times, stay far below it)",
    )
    class_code_slow_after: int = Field(
        3, ge=1, le=100, description="wrong codes in a row after which a workspace's next answers come slower"
    )
    class_code_failures_per_workspace: int = Field(
        10, ge=2, le=1000, description="wrong codes or lecturer tokens in a row after which a workspace gets 429"
    )
    public_url: str | None = Field(
        None,
        pattern=r"^https?://[^/\s?#]+$",
        description="the address students reach this server at (e.g. http://10.0.0.5:8000): class join links "
        "and QR codes use it",
    )
    max_datasets_per_workspace: int = Field(10, ge=1, le=1000, description="own data sets one workspace holds")
    max_dataset_classes: int = Field(20, ge=2, le=100, description="most classes in an own data set")
    max_dataset_examples: int = Field(2000, ge=10, le=100_000, description="most examples in an own data set")
    dataset_batch_examples: int = Field(100, ge=1, le=1000, description="most examples one request adds")
    dataset_min_per_class: int = Field(5, ge=2, le=1000, description="examples each class needs before training")
    dataset_zip_max_bytes: int = Field(20 * 1024 * 1024, ge=1024, description="largest ImageFolder zip imported")
    dataset_zip_max_files: int = Field(3000, ge=10, description="most files in an imported zip")
    dataset_zip_max_ratio: float = Field(
        100, ge=2, description="a zip member compressed more than this many times is refused as a zip bomb"
    )
    import_max_bytes: int = Field(
        20 * 1024 * 1024, ge=1024, description="largest .onnx file POST /api/models/import takes (413 beyond)"
    )
    import_max_nodes: int = Field(500, ge=8, le=100_000, description="most nodes in an imported ONNX graph")
    import_input_sides: tuple[int, int] = Field(
        (8, 384), description="smallest and largest side of an imported model's input (224x224 models fit)"
    )
    import_max_parameters: int = Field(
        6_000_000, ge=1, description="largest imported model (a 20 MB file holds about 5 million float weights)"
    )
    import_max_multiply_adds: int = Field(
        1_000_000_000, ge=1, description="most multiply-adds one picture may cost an imported model (MobileNet: 0.6e9)"
    )
    model_input_sides: tuple[int, int] = Field(
        (8, 64), description="smallest and largest side of a trained network's input (the data sets are 28x28)"
    )
    snapshots_per_job: int = Field(
        20, ge=0, le=200, description="weight snapshots kept per job (fewer if past its bytes)"
    )
    training_macs_per_second: float = Field(
        2.5e9, gt=0, description="training throughput the time estimate assumes (LeNet measures 4-6e9 on 2 cores)"
    )
    heartbeat_seconds: float = Field(2.0, gt=0, le=60, description="how often a training worker says it is alive")
    cancel_poll_seconds: float = Field(0.5, gt=0, le=10, description="how often a training job looks for a cancel")
    store_retry_seconds: float = Field(
        30.0, ge=0, le=600, description="how long a worker retries a store that does not answer"
    )
    event_poll_seconds: float = Field(0.25, gt=0, le=10, description="how often a web process reads new job events")
    stream_heartbeat_seconds: float = Field(
        15.0, gt=0, le=300, description="a comment this often keeps proxies from closing an idle event stream"
    )
    max_dataset_images: int = Field(200, ge=1, le=10_000, description="pictures one /api/datasets request returns")
    max_job_bytes: int = Field(
        25 * 1024 * 1024, ge=1024 * 1024, description="what one job may store: its events, snapshots and weights"
    )

    # -- workspaces: every limit is per workspace; the per-address ones are only flood guards --
    max_running_per_workspace: int = Field(
        1, ge=1, le=100, description="jobs one workspace trains at once; its others wait their turn in the queue"
    )
    max_jobs_per_workspace: int = Field(5, ge=1, le=1000, description="queued or running jobs per workspace")
    max_jobs_per_client: int = Field(
        300, ge=1, le=100_000, description="queued or running jobs per address (a class shares one: a flood guard)"
    )
    max_queued_seconds_per_workspace: float = Field(
        3600, ge=1, description="estimated training seconds of one workspace's queued or running jobs"
    )
    max_queued_seconds_per_client: float = Field(
        14_400,
        ge=1,
        description="estimated training seconds of one address's queued or running jobs (a flood guard: sixty "
        "students' default jobs are under 600 s)",
    )
    max_models_per_workspace: int = Field(50, ge=1, le=100_000, description="stored models per workspace")
    max_workspace_bytes: int = Field(
        200 * 1024 * 1024,
        ge=1024 * 1024,
        description="bytes stored per workspace (models, snapshots, events, data sets' pictures)",
    )
    max_bytes_per_address: int = Field(
        2 * 1024**3, ge=1024 * 1024, description="bytes kept by the workspaces of one address (507 beyond)"
    )
    max_store_bytes: int = Field(8 * 1024**3, ge=1024 * 1024, description="bytes kept in the store in all (507 beyond)")
    max_edits_per_hour: int = Field(60, ge=1, le=100_000, description="edited models one workspace makes an hour")
    max_workspaces_per_address_per_hour: int = Field(
        2000, ge=1, description="workspaces one address may create an hour (a flood guard)"
    )
    max_streams_per_workspace: int = Field(8, ge=1, le=10_000, description="open event streams per workspace")
    max_streams_per_address: int = Field(
        400, ge=1, le=100_000, description="open event streams per address (a flood guard)"
    )
    forwarded_allow_ips: str = Field(
        "127.0.0.1",
        description="proxies whose X-Forwarded-For and X-Forwarded-Proto are believed (comma-separated; * for any)",
    )
    cookie_secure: bool | None = Field(None, description="mark the workspace cookie Secure (default: when HTTPS)")

    # -- memory a model-using request or a process's caches may take --
    max_request_bytes: int = Field(
        512 * 1024 * 1024,
        ge=1024 * 1024,
        description="memory one model-using request (explain, attacks, learned views, edits) may take",
    )
    model_cache_bytes: int = Field(64 * 1024 * 1024, ge=1024 * 1024, description="loaded models kept per process")
    learned_cache_bytes: int = Field(
        256 * 1024 * 1024, ge=1024 * 1024, description="unit summaries and features kept per process"
    )
    shutdown_seconds: float = Field(
        5, gt=0, le=60, description="how long SIGTERM waits for open requests and streams before closing them"
    )

    @property
    def store(self) -> str:
        """The store's URL: the setting, or the SQLite file under the data directory."""
        return self.store_url or f"sqlite:///{(self.data_dir / 'convscope.db').resolve()}"

    @property
    def queue_url(self) -> str:
        """Huey's storage: a SQLite file beside the store's, or the same Redis."""
        if self.store.startswith("sqlite:///"):
            return "sqlite:///" + str(Path(self.store.removeprefix("sqlite:///")).with_name("queue.db"))
        return self.store


@lru_cache
def get_settings() -> Settings:
    return Settings()
