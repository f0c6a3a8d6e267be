"""Compressed answers (zstd, brotli, gzip) by Flask-Compress, streamed exports included.

Flask-Compress picks the coding from ``Accept-Encoding`` (its quality values; on a tie,
the first of `CODINGS`), compresses a whole answer of at least ``COMPRESS_MIN_SIZE``
bytes (smaller ones stay plain), and compresses a streamed export chunk by chunk as it
is sent, so an export is never held in memory. It adds ``Vary: Accept-Encoding`` and
suffixes a strong ETag with the coding (``"v7-...:gzip"``), since a strong validator must
differ between codings; `app.api.http_cache` ignores that suffix when it compares.
What compression costs and saves is measured in bench/ (docs/benchmarks.md).
"""

from __future__ import annotations

from flask import Flask, Response, current_app, request
from flask_compress import Compress

from app.api import export

# Preferred first when a client accepts several equally: zstd is the fastest to compress
# for a similar size, brotli the smallest, gzip what every client speaks.
CODINGS = ["zstd", "br", "gzip"]
COMPRESSED_TYPES = ["application/json", export.NDJSON, export.CSV, "text/html", "text/css",
                    "text/javascript", "application/javascript", "text/plain"]


def init_app(app: Flask) -> None:
    """Compress every answer the client accepts compressed (whole or streamed)."""
    app.config.setdefault("COMPRESS_ALGORITHM", CODINGS)
    app.config.setdefault("COMPRESS_ALGORITHM_STREAMING", CODINGS)
    app.config.setdefault("COMPRESS_MIMETYPES", COMPRESSED_TYPES)
    app.config.setdefault("COMPRESS_MIN_SIZE", 500)
    # Files sent whole (the page shell and its assets) are revalidated after compression,
    # against their suffixed tag; the data API's views revalidate themselves, earlier, so
    # Flask-Compress's own pass over every answer (a fifth of a /data page's cost) is off.
    app.config.setdefault("COMPRESS_STREAMING_ENDPOINT_CONDITIONAL", ["static", "ui.index"])
    app.config.setdefault("COMPRESS_EVALUATE_CONDITIONAL_REQUEST", False)
    app.after_request(_revalidate_files)  # registered first, so it runs after compression
    Compress(app)


def _revalidate_files(response: Response) -> Response:
    """Answer 304 to a file whose compressed (suffixed) tag the client already holds."""
    if (request.method in ("GET", "HEAD")
            and request.endpoint in current_app.config["COMPRESS_STREAMING_ENDPOINT_CONDITIONAL"]):
        response.make_conditional(request)
    return response
