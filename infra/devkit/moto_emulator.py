"""Runs moto's AWS emulator on a free loopback port for as long as its parent lives.

Prints `READY <port>` once it accepts connections, then blocks reading stdin. When the parent
exits (even by SIGKILL) the pipe closes, stdin hits EOF and the emulator stops, so test runs never
leave orphaned servers behind.
"""

import logging
import sys

from moto.server import ThreadedMotoServer


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    _, bound = server.get_host_and_port()
    print(f"READY {bound}", flush=True)
    sys.stdin.read()
    server.stop()


if __name__ == "__main__":
    main()
