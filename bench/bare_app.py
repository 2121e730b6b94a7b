"""A bare FastAPI app, the baseline `bench/api.py` compares rlhf-registry against.

One GET returning a small JSON object and one POST accepting a small JSON body and echoing it, served
exactly as `rlhf-registry serve` serves the real app: one process, `uvicorn.run(app, host, port,
log_level="warning", access_log=False)`, so the same loop and HTTP implementation (uvloop and httptools
when installed). The handlers are plain `def`, like the registry's routes, so both pay the same thread
pool hop; `/async/...` has the same handlers as `async def` for comparison.

    python bench/bare_app.py --port 8123
"""

from __future__ import annotations

import argparse
from typing import Annotated, Any

from fastapi import Body, FastAPI

app = FastAPI(title="bare")


@app.get("/get")
def bare_get() -> dict[str, Any]:
    return {"status": "ok", "n": 1}


@app.post("/post")
def bare_post(body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    return {"received": body}


@app.get("/async/get")
async def bare_get_async() -> dict[str, Any]:
    return {"status": "ok", "n": 1}


@app.post("/async/post")
async def bare_post_async(body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    return {"received": body}


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8123)
    args = parser.parse_args()
    # The same call as app/cli.py `serve`.
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
