"""devlink (generic netlink) through pyroute2: a device's eswitch mode (imported only when needed).

The kernel side: net/core/devlink.c devlink_nl_cmd_eswitch_{get,set}_doit. A device without a devlink
instance (igb registers none) answers ENODEV; a driver without eswitch_mode_set, EOPNOTSUPP; a driver's own
refusal comes with its extended-ack message.
"""

from __future__ import annotations

import errno as errno_mod
from typing import Any

from sriovctl.host.netlink import NetlinkError

ESWITCH_MODES = {"legacy": 0, "switchdev": 1}  # enum devlink_eswitch_mode
ESWITCH_NAMES = {v: k for k, v in ESWITCH_MODES.items()}


class PyrouteDevlink:
    def __init__(self) -> None:
        self._sk: Any = None

    def _request(self, cmd: str, attrs: list[tuple[str, object]], ack: bool) -> list[Any]:
        from pyroute2.netlink import NLM_F_ACK, NLM_F_REQUEST
        from pyroute2.netlink.devlink import DEVLINK_NAMES, DevlinkSocket, devlinkcmd

        if self._sk is None:
            try:
                self._sk = DevlinkSocket()
                self._sk.bind()
            except Exception as e:  # no devlink family in this kernel
                raise NetlinkError(getattr(e, "code", errno_mod.EOPNOTSUPP), "no devlink in this kernel") from None
        msg = devlinkcmd()
        msg["cmd"] = DEVLINK_NAMES[cmd]
        msg["version"] = 1
        msg["attrs"] = attrs
        try:
            return list(self._sk.nlm_request(msg, msg_type=self._sk.prid,
                                             msg_flags=NLM_F_REQUEST | (NLM_F_ACK if ack else 0)))
        except Exception as e:  # pyroute2's NetlinkError: .code is the errno, args[1] the extended ack
            code = getattr(e, "code", None)
            if code is None:
                raise
            text = str(e.args[1]) if len(e.args) > 1 and e.args[1] else ""
            raise NetlinkError(int(code), text) from None

    def eswitch_mode(self, bus: str, device: str) -> str:
        replies = self._request("DEVLINK_CMD_ESWITCH_GET", [("DEVLINK_ATTR_BUS_NAME", bus),
                                                            ("DEVLINK_ATTR_DEV_NAME", device)], ack=False)
        for r in replies:
            mode = r.get_attr("DEVLINK_ATTR_ESWITCH_MODE")
            if mode is not None:
                return ESWITCH_NAMES.get(int(mode), f"mode {mode}")
        raise NetlinkError(errno_mod.EOPNOTSUPP, "no eswitch mode in the reply")

    def set_eswitch_mode(self, bus: str, device: str, mode: str) -> None:
        self._request("DEVLINK_CMD_ESWITCH_SET", [("DEVLINK_ATTR_BUS_NAME", bus), ("DEVLINK_ATTR_DEV_NAME", device),
                                                  ("DEVLINK_ATTR_ESWITCH_MODE", ESWITCH_MODES[mode])], ack=True)
