"""Tools to run and test data-streams on one machine: an embedded real Redis, the process
runner behind `make run` and the test runner behind `make test`."""
