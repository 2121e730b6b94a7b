"""A bare FastAPI app, the baseline `bench/api.py` compares rlhf-registry against.

Two `async def` handlers and nothing else: GET /get answers a JSON object about the size of a record
read, POST /post parses a JSON body into a dict and echoes it (the bench sends a body the size of a
registration's). Served by uvicorn as `rlhf-registry serve` serves the real app: httptools and uvloop
(uvicorn's choice when they are installed, as they are here), access log off, `--workers N` processes.

    python bench/bare_app.py --port 8123 [--workers 2]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Annotated, Any

from fastapi import Body, FastAPI

app = FastAPI(title="bare")

# about the size of a registered record's JSON (ids, digest, timestamps, a small spec, derived figures)
RECORD_LIKE: dict[str, Any] = {
    "id": "0193a8a4-6f1e-7c3a-9d2b-5e8f1a2b3c4d",
    "kind": "evaluation",
    "project": "bench",
    "name": "reward-scores",
    "version": "17",
    "digest": "sha256:" + "ab" * 32,
    "created_at": "2026-12-07T21:00:00.000000Z",
    "created_by": "admin",
    "parents": [{"id": "0193a8a4-6f1e-7c3a-9d2b-5e8f1a2b3c4e", "kind": "policy_checkpoint", "role": "target"}],
    "spec": {"type": "reward_score", "summary": {"mean": 0.017}, "evaluators": ["rm"], "metadata": {}},
    "blobs": [],
    "derived": {"type": "reward_score", "target": {"kind": "policy_checkpoint", "name": "policy", "version": "1"}},
}


@app.get("/get")
async def bare_get() -> dict[str, Any]:
    return RECORD_LIKE


@app.post("/post")
async def bare_post(body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    return {"received": body}


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8123)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    options: dict[str, Any] = {"host": args.host, "port": args.port, "log_level": "warning", "access_log": False}
    if args.workers > 1:
        # several processes need the app as an import string
        uvicorn.run("bare_app:app", app_dir=str(Path(__file__).parent), workers=args.workers, **options)
    else:
        uvicorn.run(app, **options)


if __name__ == "__main__":
    main()
