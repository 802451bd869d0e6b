"""The desired state of a host's SR-IOV as data (issue 13; the engine is ops/desired since issue 19): the state
file (YAML, nmstate's sr-iov key names) read and checked (desired.py), its keys (keys.py) and schema
(schema.py), other tools' configuration as a state file (importers.py), the current host written in the same
schema (current.py), and which PF each entry names (match.py). Nothing here touches a host."""
