"""The OS boundary: every read and write of the host goes through a :class:`~sriovctl.host.base.Host`."""
