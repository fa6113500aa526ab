"""Host name resolution through the system resolver, for the webhook SSRF guard.

getaddrinfo takes no timeout; the Lambda's own timeout bounds a resolver that hangs.
"""

from __future__ import annotations

import socket


class SocketResolver:
    def addresses(self, host: str) -> list[str]:
        try:
            infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        except (socket.gaierror, UnicodeError):
            # UnicodeError: the idna codec refuses some names (an empty or over-long label) before any lookup.
            return []
        found = (str(info[4][0]) for info in infos if info[0] in (socket.AF_INET, socket.AF_INET6))
        return list(dict.fromkeys(found))
