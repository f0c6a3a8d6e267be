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

# Budget of one batch, overridable per stream (`batch_limits`): most records, and most bytes
# of records (their canonical JSON). A batch over either fails as `too_large` at the page
# that crossed it, before it fills Redis.
BATCH_MAX_RECORDS = 1_000_000
BATCH_MAX_BYTES = 256 * 1024 * 1024
# Largest part of a page one ingest message (and one Lua call) carries: records, and bytes
# of their canonical JSON. The worker sends a bigger page as several parts.
PAGE_PART_RECORDS = 10_000
PAGE_PART_BYTES = 4 * 1024 * 1024

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
