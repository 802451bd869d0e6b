"""Operations: what every front end (the CLI, and next the state engine, the Ansible module, the exporter) calls.
Each takes a Host (through a Session), an Inventory and options — never a front end's context — and returns
data: plans (ops.plan.Plan), outcomes (ops.plan.Outcome), reports. Interlocks, waits, rollback and the PF lock
live here; the words a front end adds (option names, hints naming them) live in the front end.

    session.py   open a host; read it; hold a PF's lock and read again if someone wrote
    plan.py      Change, Plan, Notice, Outcome
    guards.py    the interlocks: in use, taking a device from its user, assignability
    kernel.py    sysfs writes with kernel errnos as errors; the waits (settle, bind, release)
    vfcount.py   enable / disable VFs, the legacy module parameter
    vfattrs.py   VF attributes over netlink (batched, read back)
    binding.py   bind / unbind drivers
    virt.py      libvirt XML and attach/detach, QEMU arguments and QMP hot(un)plug
    reads.py     doctor, node devices, dumps, snapshots, the simulated-host catalog
    state.py     the desired state: show, read, plan, apply (checkpoint, verify, rollback), status
    desired/     the desired-state engine: planner, apply, journal (the document is data in state/)
    persist.py   install / uninstall / status of the state, boot unit, udev rule and modprobe.d (persist/)
"""
