"""Defaults for every setting, each with its unit. The environment overrides them."""

# Redis, used as Celery broker, RedBeat store and batch store.
REDIS_URL = "redis://127.0.0.1:6379/0"

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
# Extra life of a stream's batch lock beyond the hard time limit, in seconds, so the ingest
# consumer can finish storing the last pages of a batch after the fetch has ended.
LOCK_SLACK_SECONDS = 120

# Where the status page links to Flower. Not FLOWER_*: Flower reads every such variable
# as one of its own options and refuses to start on an unknown one.
UI_FLOWER_URL = "http://127.0.0.1:5555"

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
