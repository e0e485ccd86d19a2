"""Exit non-zero with a clear message when a database URL's server does not accept TCP."""

from __future__ import annotations

import socket
import sys
from urllib.parse import urlsplit

DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "mariadb": 3306}


def main(urls: list[str]) -> int:
    failed = False
    for url in urls:
        parts = urlsplit(url)
        backend = parts.scheme.partition("+")[0]
        host = parts.hostname or "127.0.0.1"
        port = parts.port or DEFAULT_PORTS.get(backend, 0)
        try:
            with socket.create_connection((host, port), timeout=5):
                print(f"ci: {backend} reachable at {host}:{port}")
        except OSError as exc:
            print(
                f"ci: {backend} is UNREACHABLE at {host}:{port} ({exc}); "
                "the tests need it, so CI stops here",
                file=sys.stderr,
            )
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
