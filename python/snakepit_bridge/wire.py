"""The generated wire types, imported in one place.

The stubs under ``_proto/`` are build output; when they are missing the bare
ModuleNotFoundError would not say how to fix it, so this module does.
"""

from __future__ import annotations

try:
    from ._proto import bridge_pb2 as pb
    from ._proto import bridge_pb2_grpc as pb_grpc
except ModuleNotFoundError as exc:
    if exc.name is None or not exc.name.startswith(f"{__package__}._proto"):
        raise
    raise ImportError(
        "snakepit_bridge: this source tree was never built, so its gRPC stubs are missing: "
        "install it (`pip install ./python`) or run `python python/tools/generate_stubs.py`"
    ) from exc

SERVICE_NAME: str = pb.DESCRIPTOR.services_by_name["WorkerBridge"].full_name

__all__ = ["SERVICE_NAME", "pb", "pb_grpc"]
