"""The `data-streams` command line: an HTTP client of the API, for operators at a terminal.

It talks to a deployment over HTTP only (``DS_URL``, ``DS_TOKEN``) and imports nothing of
`app` or `tasks`, so it runs against a remote deployment as well as `make run`.
"""
