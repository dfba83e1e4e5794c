"""Raw grpcio bytes server for the payload baseline (no Snakepit code, no protobuf).

Adapted from shared/research/large-payload-probe/server.py: each request is one gRPC
message of raw float32 bytes (identity serializers), viewed with ``np.frombuffer``
(no copy). The work mirrors the showcase's array tools so both sides do the same numpy:

* ``/bench.Bytes/Sum``: the float32 sum, answered as 8 little-endian float64 bytes
  (``array_sum``: the array goes one way);
* ``/bench.Bytes/Scale``: the first 8 bytes are a float64 factor, the rest the array;
  answers ``x * factor`` as raw float32 bytes (``array_scale``: both ways);
* ``/bench.Bytes/Fill``: a uint64 element count and a float64 value; answers that many
  float32 copies of the value as raw bytes (``array_fill``: the array comes back only).

Prints ``READY <address>`` once serving; exits on SIGTERM/SIGINT and on stdin EOF.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import signal
import struct
import sys
import threading
from types import FrameType

import grpc
import numpy as np


def _ident(b: bytes) -> bytes:
    return b


def _sum(request: bytes, _ctx: grpc.ServicerContext) -> bytes:
    return struct.pack("<d", float(np.frombuffer(request, dtype="<f4").sum()))


def _scale(request: bytes, _ctx: grpc.ServicerContext) -> bytes:
    (factor,) = struct.unpack_from("<d", request)
    x = np.frombuffer(request, dtype="<f4", offset=8)
    return (x * np.float32(factor)).tobytes()


def _fill(request: bytes, _ctx: grpc.ServicerContext) -> bytes:
    n, value = struct.unpack("<Qd", request)
    return np.full(n, value, dtype="<f4").tobytes()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--address", required=True, help="unix:///abs/path.sock")
    parser.add_argument("--max-bytes", type=int, required=True, help="message limit, both directions")
    ns = parser.parse_args()
    server = grpc.server(
        concurrent.futures.ThreadPoolExecutor(max_workers=2),
        options=[
            ("grpc.so_reuseport", 0),
            ("grpc.max_receive_message_length", ns.max_bytes),
            ("grpc.max_send_message_length", ns.max_bytes),
        ],
    )
    handlers = {
        "Sum": grpc.unary_unary_rpc_method_handler(_sum, request_deserializer=_ident, response_serializer=_ident),
        "Scale": grpc.unary_unary_rpc_method_handler(_scale, request_deserializer=_ident, response_serializer=_ident),
        "Fill": grpc.unary_unary_rpc_method_handler(_fill, request_deserializer=_ident, response_serializer=_ident),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("bench.Bytes", handlers),))
    server.add_insecure_port(ns.address)
    server.start()
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)

    def watch_stdin() -> None:
        try:
            while os.read(0, 65536):
                pass
        except OSError:
            pass
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    sys.stdout.write(f"READY {ns.address}\n")
    sys.stdout.flush()
    while not stop.wait(0.5):
        pass
    server.stop(0.2)
    os._exit(0)


if __name__ == "__main__":
    main()
