"""Middleware on the record stream: a per-stream chain of record transforms.

The worker builds one `Chain` per batch from the stream definition and passes each page's
records through it before sending them to data-streams; `Chain.finish` releases records
a step held back until the last page. Write custom middleware against `Middleware`
(see `tasks.middleware.examples` and the README's Middleware section).
"""

from tasks.middleware.base import BatchContext, Middleware, RecordMiddleware
from tasks.middleware.chain import Chain, build_chain

__all__ = ["BatchContext", "Chain", "Middleware", "RecordMiddleware", "build_chain"]
