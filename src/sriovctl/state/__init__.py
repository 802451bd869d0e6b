"""The desired state of a host's SR-IOV (issue 13): the state file (YAML, nmstate's sr-iov key names), read
and checked here (desired.py), the current host written in the same schema (current.py), and the schema
itself generated from the same tables (schema.py)."""
