"""Runs moto's AWS emulator on a free loopback port for as long as its parent lives.

Prints `READY <port>` once it accepts connections, then blocks reading stdin. When the parent
exits (even by SIGKILL) the pipe closes, stdin hits EOF and the emulator stops, so test runs never
leave orphaned servers behind.
"""

import functools
import logging
import os
import sys
import threading
import time

from moto.moto_server import werkzeug_app
from moto.server import ThreadedMotoServer


def _serialize(target_prefix: str, lock: "threading.RLock") -> None:
    """Runs the requests whose X-Amz-Target starts with `target_prefix` one at a time, under
    `lock`. Other requests stay concurrent."""
    dispatch = werkzeug_app.DomainDispatcherApplication.__call__

    def call(self, environ, start_response):
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith(target_prefix):
            with lock:
                return list(dispatch(self, environ, start_response))
        return dispatch(self, environ, start_response)

    werkzeug_app.DomainDispatcherApplication.__call__ = call


def _serialize_dynamodb_requests() -> None:
    """DynamoDB evaluates a conditional write and applies it atomically per item; moto's threaded
    server does not (no lock between the condition check and the write), so two concurrent
    conditional PutItems on one item can both succeed there. One lock around DynamoDB requests
    restores the guarantee the sync worker relies on."""
    _serialize("DynamoDB_", threading.RLock())


def _serialize_sqs_requests() -> None:
    """moto's queues are plain lists that its SQS calls replace without a lock: a DeleteMessage
    rebuilds the list while a concurrent SendMessage appends to the old one, and that message is
    gone; two concurrent ReceiveMessage calls can hand out one message twice. SQS never loses an
    acknowledged message, so SQS requests run one at a time here too; a long poll gives the lock
    up while it waits for messages, so it never holds up the senders it is waiting for."""
    from moto.sqs.models import Queue

    lock = threading.RLock()
    _serialize("AmazonSQS.", lock)
    wait = Queue.wait_for_messages

    def wait_unlocked(self, timeout):
        try:
            lock.release()
        except RuntimeError:  # a request this lock does not serialize (query protocol)
            return wait(self, timeout)
        try:
            wait(self, timeout)
        finally:
            lock.acquire()

    Queue.wait_for_messages = wait_unlocked


def _take_the_cheap_paths() -> None:
    """Three hot spots of moto's, measured with cProfile under the load test, made cheap without
    changing what they return:

    - every SQS call walks the queue's messages asking each whether it is visible and whether it
      is delayed, and each asks the time through datetime arithmetic (four allocations): ~2 µs a
      message, so a receive at a backlog of 5,000 spent most of its 3 s there. The same Unix time,
      from `time.time()`, is ~20× cheaper.
    - each SendMessage recomputes the queue's attributes, converting every attribute name from
      CamelCase on the way (~60 µs a call); the conversion of a name never changes.
    - each request lists moto's package directory on disk (`list_of_moto_modules`, ~1 ms) to
      route it; the list never changes while the server runs.
    """
    from moto import backends
    from moto.sqs import models as sqs_models

    unix_time, unix_time_millis = sqs_models.unix_time, sqs_models.unix_time_millis

    def fast_unix_time(dt=None):
        return time.time() if dt is None else unix_time(dt)

    def fast_unix_time_millis(dt=None):
        return time.time() * 1000.0 if dt is None else unix_time_millis(dt)

    sqs_models.camelcase_to_underscores = functools.cache(sqs_models.camelcase_to_underscores)
    sqs_models.unix_time = fast_unix_time
    sqs_models.unix_time_millis = fast_unix_time_millis
    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = functools.cache(lambda: modules)


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    _serialize_dynamodb_requests()
    _serialize_sqs_requests()
    # MOTO_EMULATOR_PLAIN=1: moto's own paths, for measuring what the patches save
    # (infra/devkit/bench/emulator.py --plain).
    if os.environ.get("MOTO_EMULATOR_PLAIN") != "1":
        _take_the_cheap_paths()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    _, bound = server.get_host_and_port()
    print(f"READY {bound}", flush=True)
    sys.stdin.read()
    server.stop()


if __name__ == "__main__":
    main()
