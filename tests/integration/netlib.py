"""One accept loop for the tests' loopback TCP servers (TLS fronts, proxies).

close() shuts the listening socket down before closing it. A thread blocked
in accept() on a merely closed socket stays blocked, and the next socket the
process opens gets the same descriptor number: the old thread then accepts
that socket's connections and serves them as the old server (a TLS front of
the previous test answering with the previous test's certificate). shutdown()
wakes the thread (accept fails with EINVAL), and the join makes sure it has
left before the descriptor is released."""
import socket
import threading
import time


class Listener(object):
    """Listens on @host, port chosen by the kernel (self.port), and runs
    self.serve(conn) in a daemon thread for each connection."""

    def __init__(self, host="127.0.0.1", backlog=16):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(backlog)
        self.port = self.sock.getsockname()[1]
        self.closed = False
        self.accept_thread = threading.Thread(target=self._accept, daemon=True)
        self.accept_thread.start()

    def _accept(self):
        while not self.closed:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, conn):
        raise NotImplementedError

    def close(self):
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.accept_thread.join(5)
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def wait_for(what, fn, timeout, interval=0.1):
    """Call fn() until it returns a true value; return it. On timeout raise
    AssertionError naming `what` and fn's last value."""
    deadline = time.monotonic() + timeout
    while True:
        last = fn()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %ss waiting for %s; last: %r" % (timeout, what, last))
        time.sleep(interval)
