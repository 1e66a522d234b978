"""A TCP proxy on 127.0.0.1 that a test puts between the app and its database, then cuts and
restores to make the database unreachable and reachable again; or between a client and the
app, to lose the app's replies (LOSE_REPLIES: the request arrives, the reply never does)."""

from __future__ import annotations

import socket
import threading

REFUSE = "refuse"  # every connection is closed at once: a database that is down or restarting
HANG = "hang"  # connections are accepted and never answered: a host that vanished
LOSE_REPLIES = "lose-replies"  # requests go through; the first byte back closes the connection


class TcpProxy:
    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)  # so that the accept loop notices close() promptly
        self.port = self.listener.getsockname()[1]
        self.mode: str | None = None  # None: forwarding
        self.sockets: set[socket.socket] = set()
        self.lock = threading.Lock()
        self.running = True
        self.thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.thread.start()

    def cut(self, mode: str = REFUSE) -> None:
        """Drop every open connection; until restore(), refuse or hang new ones."""
        self.mode = mode
        self._drop_all()

    def restore(self) -> None:
        self.mode = None
        self._drop_all()  # connections held by HANG

    def close(self) -> None:
        self.running = False
        self.thread.join(timeout=5)
        self.listener.close()
        self._drop_all()

    def _accept_loop(self) -> None:
        while self.running:
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self.mode == REFUSE:
                client.close()
            elif self.mode == HANG:
                self._track(client)
            else:
                self._forward(client)

    def _forward(self, client: socket.socket) -> None:
        try:
            server = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            client.close()
            return
        server.settimeout(None)
        for sock in (client, server):
            self._track(sock)
        for source, target in ((client, server), (server, client)):
            threading.Thread(target=self._pump, args=(source, target, source is server),
                             daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, reply: bool = False) -> None:
        try:
            while data := source.recv(65536):
                if reply and self.mode == LOSE_REPLIES:
                    return  # the reply is lost: both ends are closed below
                target.sendall(data)
        except OSError:
            pass
        finally:
            self._drop(source)
            self._drop(target)

    def _track(self, sock: socket.socket) -> None:
        with self.lock:
            self.sockets.add(sock)

    def _drop(self, sock: socket.socket) -> None:
        with self.lock:
            self.sockets.discard(sock)
        try:
            sock.shutdown(socket.SHUT_RDWR)  # wakes a pump blocked in recv()
        except OSError:
            pass
        sock.close()

    def _drop_all(self) -> None:
        with self.lock:
            sockets = list(self.sockets)
        for sock in sockets:
            self._drop(sock)
