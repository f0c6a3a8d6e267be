"""`python -m dscli`: the same command line as the `data-streams` console script."""

from dscli.main import main

main()
