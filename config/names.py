"""The names of queues and tasks: the contract between the web app, beat and the workers.

Both sides read them from here, so the web app never imports `tasks` to learn a name:

    queue ``fetch``    ds.fetch.stream(stream)                       beat -> fetch worker
    queue ``ingest``   ds.ingest.begin(stream, version, token)       fetch worker -> ingest
                       ds.ingest.page(stream, version, token, page, entries)
                       ds.ingest.complete(stream, version, token, pages, records, info)
                       ds.ingest.fail(stream, version, token, error)
    queue ``deliver``  ds.deliver.stream(stream, destination)        publish, sweep -> deliver
                       ds.deliver.sweep()                            beat -> deliver

The messages themselves are described in `tasks.protocol`.
"""

from __future__ import annotations

FETCH_QUEUE = "fetch"
INGEST_QUEUE = "ingest"
DELIVER_QUEUE = "deliver"
QUEUES = (FETCH_QUEUE, INGEST_QUEUE, DELIVER_QUEUE)

FETCH_STREAM = "ds.fetch.stream"
INGEST_BEGIN = "ds.ingest.begin"
INGEST_PAGE = "ds.ingest.page"
INGEST_COMPLETE = "ds.ingest.complete"
INGEST_FAIL = "ds.ingest.fail"
DELIVER_STREAM = "ds.deliver.stream"
DELIVER_SWEEP = "ds.deliver.sweep"

# Celery routes: every task of a family goes to its queue.
TASK_ROUTES = {"ds.fetch.*": {"queue": FETCH_QUEUE}, "ds.ingest.*": {"queue": INGEST_QUEUE},
               "ds.deliver.*": {"queue": DELIVER_QUEUE}}
# Modules that define the tasks, imported by every Celery process.
TASK_MODULES = ["tasks.fetch", "tasks.ingest", "tasks.deliver"]
