"""`python -m synapse_ng.cli`: how tests, `network up` and the demo start the command as a real process."""

from . import main

main()
