"""The batch store: every Redis key data-streams owns, one module per structure.

- `keys`: the key layout (read it first).
- `definitions`: stream definitions (string + set).
- `locks`: the per-stream batch lock and version sequence (strings), used by the worker.
- `batches`: batch lifecycle writes, staging into a version's sorted set, atomic publish (Lua).
- `reader`: reads of published versions, batch history, cursors.
"""
