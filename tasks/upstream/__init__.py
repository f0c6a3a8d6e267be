"""The worker's upstream HTTP client: pages of records from a stream's `source`.

    pager = Pager(source)
    for page in pager:          # Page(number, url, records)
        ...
    pager.stop_reason           # why pagination ended: no_next, max_pages, ...

Every failure is an `app.exceptions.UpstreamError` with a machine-readable `kind`;
no raw `requests` exception leaves this package.
"""

from tasks.upstream.client import Page, Pager

__all__ = ["Page", "Pager"]
