"""TCP ports on this machine: one free to listen on, and whether one is taken."""

from __future__ import annotations

import errno
import socket


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (the system's pick)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_taken(host: str, port: int) -> bool:
    """Whether a server could not listen on ``host``:``port`` now. Bound as uvicorn and most
    servers bind, with SO_REUSEADDR, so a port left in TIME_WAIT by a stopped server is free."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return False  # a host that does not resolve: the server says so itself
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(address)
            except OSError as err:
                if err.errno == errno.EADDRINUSE:
                    return True
    return False
