"""A large blob through the multipart upload path, on S3 (SeaweedFS) and on the filesystem store.

    .venv/bin/python bench/upload.py [--size-mib 1024] [--part-mib 64] [--concurrency 4] [--json]

Writes a file of random bytes to disk one MiB at a time (never whole in memory), then for each store:
starts `rlhf-registry serve` on a fresh data dir (SQLite; blobs on a local SeaweedFS S3 server started
here, `RLHF_REGISTRY_BLOB_URL=s3://...`, or the embedded blob folder), and uploads the file with
`app.client.uploads.upload_large` in a client subprocess: hash, start the session, send the parts
(presigned PUTs straight to SeaweedFS, or `PUT .../parts/{n}` to the server), complete (the server
hashes the assembled blob before it stores it under its digest). Prints wall times, MB/s, and the peak
resident memory (VmHWM) of the client and of the server before and after the upload: both must grow
by far less than the file (target: < 100 MiB each). Only 127.0.0.1 is contacted; the servers are
stopped on every exit.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.serving import Served, peak_rss_bytes, serve
from tests.support.seaweed import SeaweedServer

MiB = 1024 * 1024
TARGET_GROWTH_BYTES = 100 * MiB


def serve_with(data_dir: Path, extra_env: dict[str, str]) -> contextlib.AbstractContextManager[Served]:
    return serve(data_dir, extra_env=extra_env, principal="bench")


def write_random_file(path: Path, size: int) -> None:
    with path.open("wb") as fh:
        for start in range(0, size, MiB):
            fh.write(os.urandom(min(MiB, size - start)))


def client_main(path: Path, part_size: int, concurrency: int) -> None:
    """The uploading client (run as a subprocess so that its peak memory is its own)."""
    from app.client import RegistryClient, sha256_file
    from app.client.uploads import upload_large

    with RegistryClient() as client:
        rss_start = peak_rss_bytes(os.getpid())
        t0 = time.perf_counter()
        digest = sha256_file(path)
        t_hashed = time.perf_counter()
        last_byte = t_hashed

        def progress(_: int) -> None:
            nonlocal last_byte
            last_byte = time.perf_counter()

        result = upload_large(client, path, progress, digest=digest, part_size=part_size, concurrency=concurrency)
        t_done = time.perf_counter()
    print(
        json.dumps(
            {
                "digest": result.digest,
                "sent": result.sent,
                "hash_s": t_hashed - t0,
                "parts_s": last_byte - t_hashed,
                "complete_s": t_done - last_byte,
                "rss_start": rss_start,
                "rss_end": peak_rss_bytes(os.getpid()),
            }
        )
    )


def _warm_up(served: Served) -> None:
    """One small multipart upload, so the server's 'before' figure includes the code paths used."""
    headers = {"Authorization": f"Bearer {served.token}"}
    data = os.urandom(1000)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    session = httpx.post(
        f"{served.url}/v1/blobs/uploads", json={"digest": digest, "size": len(data)}, headers=headers
    ).json()
    part = session["parts"][0]
    if part["url"]:
        httpx.put(part["url"], content=data).raise_for_status()
    else:
        httpx.put(
            f"{served.url}/v1/blobs/uploads/{session['upload_id']}/parts/1", content=data, headers=headers
        ).raise_for_status()
    done = httpx.post(f"{served.url}/v1/blobs/uploads/{session['upload_id']}/complete", headers=headers)
    done.raise_for_status()


def measure(served: Served, path: Path, args: argparse.Namespace) -> dict[str, Any]:
    _warm_up(served)
    server_before = peak_rss_bytes(served.pid)
    command = [
        sys.executable,
        __file__,
        "--client",
        str(path),
        "--part-mib",
        str(args.part_mib),
        "--concurrency",
        str(args.concurrency),
    ]
    t0 = time.perf_counter()
    ran = subprocess.run(command, env=served.env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if ran.returncode != 0:
        raise RuntimeError(f"client failed:\n{ran.stderr[-3000:]}")
    client = json.loads(ran.stdout.strip().splitlines()[-1])
    server_after = peak_rss_bytes(served.pid)
    head = httpx.head(f"{served.url}/v1/blobs/{client['digest']}", headers={"Authorization": f"Bearer {served.token}"})
    size = path.stat().st_size
    assert head.status_code == 200 and int(head.headers["content-length"]) == size, head
    upload_s = client["parts_s"] + client["complete_s"]
    return {
        "size_mib": round(size / MiB),
        "wall_s": round(wall, 2),
        "hash_s": round(client["hash_s"], 2),
        "parts_s": round(client["parts_s"], 2),
        "complete_s": round(client["complete_s"], 2),
        "upload_mb_per_s": round(size / 1e6 / upload_s, 1),
        "client_peak_rss_mib_start": round(client["rss_start"] / MiB, 1),
        "client_peak_rss_mib_end": round(client["rss_end"] / MiB, 1),
        "server_peak_rss_mib_before": round(server_before / MiB, 1),
        "server_peak_rss_mib_after": round(server_after / MiB, 1),
        "client_growth_mib": round((client["rss_end"] - client["rss_start"]) / MiB, 1),
        "server_growth_mib": round((server_after - server_before) / MiB, 1),
    }


def run(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-upload-") as tmp:
        root = Path(tmp)
        path = root / "blob.bin"
        write_random_file(path, args.size_mib * MiB)
        if "s3" in args.stores:
            with SeaweedServer(bucket="bench-upload") as seaweed:
                env = {
                    "RLHF_REGISTRY_BLOB_URL": f"s3://{seaweed.bucket}/registry",
                    "RLHF_REGISTRY_S3_ENDPOINT_URL": seaweed.endpoint_url,
                    "RLHF_REGISTRY_S3_REGION": seaweed.region,
                    "RLHF_REGISTRY_S3_ACCESS_KEY_ID": seaweed.access_key,
                    "RLHF_REGISTRY_S3_SECRET_ACCESS_KEY": seaweed.secret_key,
                }
                with serve_with(root / "s3-data", env) as served:
                    results["s3"] = measure(served, path, args)
        if "fs" in args.stores:
            with serve_with(root / "fs-data", {}) as served:
                results["filesystem"] = measure(served, path, args)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--part-mib", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--stores", nargs="+", choices=["s3", "fs"], default=["s3", "fs"])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--client", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client is not None:
        client_main(args.client, args.part_mib * MiB, args.concurrency)
        return
    results = run(args)
    if args.json:
        print(json.dumps(results))
        return
    for store, figures in results.items():
        print(f"== {store}")
        for key, value in figures.items():
            print(f"  {key:28} {value}")
        flat = max(figures["client_growth_mib"], figures["server_growth_mib"]) * MiB < TARGET_GROWTH_BYTES
        print(f"  target: client and server peak memory grow < 100 MiB: {'met' if flat else 'MISSED'}")


if __name__ == "__main__":
    main()
