"""Middleware on the record stream: a per-stream chain of record transforms.

The worker builds one `Chain` per batch from the stream definition and passes each page's
records through it before sending them to data-streams.
"""

from tasks.middleware.chain import BatchContext, Chain, build_chain

__all__ = ["BatchContext", "Chain", "build_chain"]
