"""The command line: thin commands that resolve settings, call the jobs and reports, set the exit code."""
