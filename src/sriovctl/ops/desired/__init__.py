"""The desired-state engine (issue 13, moved under the operations layer in issue 19): the plan from a state
document and the host (planner.py), its apply with checkpoint, verify and rollback (engine.py), and the journal
and applied record it keeps under the PF lock (journal.py). The document itself — reader, keys, schema,
importers, the current-state view, PF matching — is data in sriovctl.state, below this package."""
