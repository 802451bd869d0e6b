"""The command line: verbs, rendering, exit codes."""
