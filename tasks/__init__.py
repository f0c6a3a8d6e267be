"""The worker: fetches upstreams on schedule and sends records to the ingest queue.

`worker` is the Celery entry module (``celery -A tasks.worker ...``); `fetch` the fetch
task; `upstream` the HTTP client; `middleware` the per-stream record transforms.
"""
