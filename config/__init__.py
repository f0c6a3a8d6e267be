"""Settings of data-streams and the schema of a stream definition.

`settings.load_settings()` reads the environment; `streams.StreamDefinition` is the public
contract of `PUT /streams/<name>`, shared by the web process (validation) and the worker
(fetching).
"""
