"""python-shell (JSON mode) worker: one JSON object per line in, one per line out, tagged by id."""

from __future__ import annotations

import json
import sys

from bench_tools import call_obj

_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def main() -> None:
    write = sys.stdout.write
    flush = sys.stdout.flush
    for line in sys.stdin:  # EOF (the host closed stdin or died) ends the worker
        if not line.strip():
            continue
        message = json.loads(line)
        ok, result, error = call_obj(message["tool"], message.get("args") or {})
        reply = {"id": message["id"], "ok": ok}
        if ok:
            reply["result"] = result
        else:
            reply["error"] = error
        write(_ENCODER.encode(reply) + "\n")
        flush()


if __name__ == "__main__":
    main()
