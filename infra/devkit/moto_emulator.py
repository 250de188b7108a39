"""Runs moto's AWS emulator on a free loopback port for as long as its parent lives.

Prints `READY <port>` once it accepts connections, then blocks reading stdin. When the parent
exits (even by SIGKILL) the pipe closes, stdin hits EOF and the emulator stops, so test runs never
leave orphaned servers behind.
"""

import logging
import sys
import threading

from moto.moto_server import werkzeug_app
from moto.server import ThreadedMotoServer


def _serialize_dynamodb_requests() -> None:
    """DynamoDB evaluates a conditional write and applies it atomically per item; moto's threaded
    server does not (no lock between the condition check and the write), so two concurrent
    conditional PutItems on one item can both succeed there. One lock around DynamoDB requests
    restores the guarantee the sync worker relies on. Other services (SQS long polls) stay
    concurrent."""
    lock = threading.Lock()
    dispatch = werkzeug_app.DomainDispatcherApplication.__call__

    def call(self, environ, start_response):
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            with lock:
                return list(dispatch(self, environ, start_response))
        return dispatch(self, environ, start_response)

    werkzeug_app.DomainDispatcherApplication.__call__ = call


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    _serialize_dynamodb_requests()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    _, bound = server.get_host_and_port()
    print(f"READY {bound}", flush=True)
    sys.stdin.read()
    server.stop()


if __name__ == "__main__":
    main()
