"""Defaults for every setting, each with its unit. The environment overrides them."""

# Redis of the Celery broker and RedBeat (one Redis or Sentinel; config/redis_url.py). The
# batch store's, STORE_URL, defaults to the same.
REDIS_URL = "redis://127.0.0.1:6379/0"

# On a store with replicas (cluster, Sentinel): how long a new batch version and a publish
# wait for one replica to hold them before going on anyway (with a warning), in ms.
REPLICA_WAIT_MS = 500

# An ingest step that finds the store unreachable (a failover, a restart) is retried 1, 2,
# 4, ... seconds later, at most STORE_RETRY_BACKOFF_MAX seconds apart, STORE_RETRIES times
# (about four minutes in all), so no page of a batch in flight is dropped.
STORE_RETRIES = 12
STORE_RETRY_BACKOFF_MAX = 30
# Sending a Celery message to a broker that is failing over is retried 0, 0.5, 1, ... at
# most 3 seconds apart, 10 times (about 20 seconds in all) before the sender gives up.
PUBLISH_RETRY_POLICY = {"max_retries": 10, "interval_start": 0, "interval_step": 0.5,
                        "interval_max": 3}

# How many streams each web process remembers the highest version it served of (about 100
# bytes each), so a failover that lost a publish never serves an older one
# (app/store/served.py), in streams.
SERVED_VERSIONS_KEPT = 100_000

# Key prefix of every data-streams key (the store's layout is in app/store/keys.py).
KEY_PREFIX = "ds"

# Fetch schedule: default interval of a stream, in seconds.
DEFAULT_INTERVAL_SECONDS = 300
# Smallest and largest interval a stream may ask for, in seconds.
MIN_INTERVAL_SECONDS = 1
MAX_INTERVAL_SECONDS = 7 * 24 * 3600

# How often beat looks for new or changed schedule entries, in seconds.
BEAT_MAX_LOOP_INTERVAL = 5
# How long beat's lock lives without renewal, in seconds (a standby beat takes over after it).
BEAT_LOCK_TIMEOUT = 60

# Fetch task time limits, in seconds: soft ends the batch as failed, hard kills the task.
FETCH_SOFT_TIME_LIMIT = 600
FETCH_HARD_TIME_LIMIT = 660
# Broker visibility timeout, in seconds: must stay above every task's hard time limit.
VISIBILITY_TIMEOUT = 3600
# Life of a batch's lease (the stream's batch lock) without renewal, in seconds: a batch
# whose worker died frees its stream this long after the last renewal.
LEASE_TTL_SECONDS = 30
# How often the running fetch (and a settling ingest consumer) renews the lease, in seconds.
LEASE_RENEW_SECONDS = 5

# Flower's port (the Procfile's flower line reads FLOWER_PORT with the same default).
FLOWER_PORT = 5555
# Where the status page links to Flower, {port} being FLOWER_PORT. Not FLOWER_*: Flower
# reads every such variable as one of its own options and refuses to start on an unknown one.
UI_FLOWER_URL = "http://127.0.0.1:{port}"

# How many published versions stay readable.
KEEP_VERSIONS = 3
# How long a replaced version, or a failed batch's staging data, survives, in seconds.
GRACE_SECONDS = 600
# How many batches the history of a stream keeps.
HISTORY_LENGTH = 200
# How many published versions keep their change sets (GET /changes?since= older than that
# answers 410: do a full reload). A change set can be as large as its batch.
CHANGE_HISTORY = 24

# Page size of GET /streams/<name>/data: default and maximum, in records.
DEFAULT_PAGE_LIMIT = 100
MAX_PAGE_LIMIT = 10_000

# Page size of the lists GET /streams and GET /streams/<name>/batches: default and
# maximum, in items; and the most items one page of a list filtered by state or status
# examines (a page may then hold fewer items and still have a next_cursor).
DEFAULT_LIST_LIMIT = 100
MAX_LIST_LIMIT = 1000
LIST_SCAN_LIMIT = 1000

# How long a client or cache may keep an answer about a pinned version (?version=, or a
# cursor), in seconds: a published version never changes. The current version: no-cache.
PINNED_MAX_AGE_SECONDS = 365 * 24 * 3600

# Budget of one batch, overridable per stream (`batch_limits`): most records, and most bytes
# of records (their canonical JSON). A batch over either fails as `too_large` at the page
# that crossed it, before it fills Redis.
BATCH_MAX_RECORDS = 1_000_000
BATCH_MAX_BYTES = 256 * 1024 * 1024
# Largest part of a page one ingest message (and one Lua call) carries: records, and bytes
# of their canonical JSON. The worker sends a bigger page as several parts.
PAGE_PART_RECORDS = 10_000
PAGE_PART_BYTES = 4 * 1024 * 1024
# Records per final page of those a middleware held back to the end of a batch (dedupe
# keeping the last): the worker holds one such page in memory at a time.
HELD_PAGE_RECORDS = 1000

# Publish gate: quarantine a batch that lost more than this fraction of the previous
# version's records, unless the stream sets its own `publish_gate.max_drop_ratio` (null: off).
MAX_DROP_RATIO = 0.5

# Memory limit of the embedded redis-server of `make run` (REDIS_MAXMEMORY), in bytes; it
# refuses writes beyond it (`noeviction`) and data-streams answers 503 `store_full`.
EMBEDDED_REDIS_MAXMEMORY = 1024 * 1024 * 1024

# Upstream guard: most pages one batch may fetch.
MAX_PAGES = 10_000
# Upstream guard: largest response body one page may have, in bytes.
MAX_RESPONSE_BYTES = 50 * 1024 * 1024

# Module prefixes custom middleware may be imported from (CUSTOM_MIDDLEWARE_PREFIXES, a comma
# list such as "tasks.middleware.examples"); empty: no custom middleware at all.
CUSTOM_MIDDLEWARE_PREFIXES: tuple[str, ...] = ()

# /readyz: how long to wait for Celery workers to answer, in seconds.
READY_TIMEOUT_SECONDS = 1.0
# Level of the JSON log lines of every process.
LOG_LEVEL = "INFO"

# Upstream secrets: the prefix every environment variable named by a definition's `*_env`
# fields must have, so no definition can send the server's own settings upstream.
SECRET_ENV_PREFIX = "DS_SECRET_"
# /readyz: how long one answer is reused by every caller of a web process, in seconds.
READY_CACHE_SECONDS = 5.0
# Without API_TOKEN, state-changing requests must come from the server's own origin:
# http(s)://127.0.0.1, localhost or [::1] at the port the request reached. TRUSTED_ORIGINS
# (a comma list such as "https://ds.example.com") adds others; none by default.
TRUSTED_ORIGINS: tuple[str, ...] = ()
# Deepest nesting of arrays and objects a JSON request body may have, in levels.
MAX_JSON_DEPTH = 64
# Deliveries to destinations (config/destinations.py).
# How often beat looks for destinations that are behind and due, in seconds.
DELIVERY_SWEEP_SECONDS = 10
# Backoff after a failed delivery, in seconds: the first wait, doubled per failure up to the cap.
DELIVERY_RETRY_BASE_SECONDS = 5
DELIVERY_RETRY_MAX_SECONDS = 300
# Life of a delivery's lock without renewal, in seconds; the running delivery renews it every
# third of that, so a killed worker's destination is free again this long after the kill.
DELIVERY_LOCK_SECONDS = 30
# Delivery task time limits, in seconds (a full reload of a large stream can take minutes).
DELIVERY_SOFT_TIME_LIMIT = 1800
DELIVERY_HARD_TIME_LIMIT = 1860
# Where duckdb destinations' `path` is resolved (relative to the working directory).
DUCKDB_DIR = "var"
# Where the delivery worker keeps dlt's pipeline working files; empty: <temp dir>/data-streams-dlt.
DELIVERY_WORK_DIR = ""
