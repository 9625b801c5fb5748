"""Store throughput against raw fsspec on the same backend.

Put and get of 1 MB and 200 MB blobs through ``nbdeploy.store`` (content-addressed by sha256, written so that
a blob appears whole or not at all, plus the catalog row) against raw fsspec ``pipe_file``/``cat_file``
(bytes) and ``put_file``/``get_file`` (files). Prints MB/s and the ratio nbdeploy / raw (target ≥ 0.8).

A put must compute the sha256 of every byte (it is the blob's public address), which raw fsspec does not:
the next lines print sha256 alone over the same payload, and the best ratio a put can reach when hashing
cannot overlap the copy (a busy machine) or when it can (an idle second core); the last lines, per put row, the
real ratio again beside the ratio with the sha256 time subtracted (labelled "w/o sha256": what is left besides
hashing, not a result the store reaches).

    python benchmarks/store.py [--backend file|memory] [--reps 3]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import fsspec

from nbdeploy.store import Store


def paired(
    nbd: Callable[[], object], raw: Callable[[], object], reps: int, setup: Callable[[], object] | None = None
) -> tuple[float, float]:
    """Median seconds of ``nbd`` and ``raw``, interleaved rep by rep so both see the same disk and cache
    state (``setup`` runs untimed before each call)."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(reps):
        for fn, out in ((nbd, times[0]), (raw, times[1])):
            if setup:
                setup()
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
    return statistics.median(times[0]), statistics.median(times[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="file", choices=["file", "memory"])
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        base = f"file://{tmp}" if args.backend == "file" else f"memory://bench-{uuid.uuid4().hex}"
        raw_fs, raw_root = fsspec.core.url_to_fs(base + "/raw")
        raw_fs.makedirs(raw_root, exist_ok=True)
        rows = []
        floors = []
        unhashed: list[tuple[str, str, float, float, float]] = []
        for label, size in (("1 MB", 1 << 20), ("200 MB", 200 << 20)):
            payload = os.urandom(size)
            src = Path(tmp) / f"src-{size}.bin"
            src.write_bytes(payload)
            mb = size / 1e6

            # every rep stores different content (an existing hash would make the put a no-op)
            reps = args.reps if size > (16 << 20) else args.reps * 20
            store = Store(f"{base}/nbd", f"sqlite:///{tmp}/catalog-{size}.db")
            variant = bytearray(payload)

            def next_payload(variant: bytearray = variant, src: Path = src) -> None:
                variant[:16] = os.urandom(16)
                with open(src, "r+b") as fh:
                    fh.write(variant[:16])

            def nbd_put_bytes(store: Store = store, variant: bytearray = variant) -> None:
                store.put("artifact", "blob", variant)

            def nbd_put_file(store: Store = store, src: Path = src) -> None:
                store.put("artifact", "blob", src)

            def raw_put_bytes(variant: bytearray = variant) -> None:
                raw_fs.pipe_file(f"{raw_root}/{uuid.uuid4().hex}", bytes(variant))

            def raw_put_file(src: Path = src) -> None:
                raw_fs.put_file(str(src), f"{raw_root}/{uuid.uuid4().hex}")

            put_b = paired(nbd_put_bytes, raw_put_bytes, reps, next_payload)
            put_f = paired(nbd_put_file, raw_put_file, reps, next_payload)

            raw_key = f"{raw_root}/read-{size}"
            raw_fs.pipe_file(raw_key, payload)
            out = str(Path(tmp) / "out.bin")
            get_b = paired(
                lambda store=store: store.read("artifact", "blob"),
                lambda raw_key=raw_key: raw_fs.cat_file(raw_key),
                reps,
            )
            get_f = paired(
                lambda store=store, out=out: store.artifacts.download_blob(store.get("artifact", "blob").sha256, out),
                lambda raw_key=raw_key, out=out: raw_fs.get_file(raw_key, out),
                reps,
            )
            hash_s, _ = paired(lambda payload=payload: hashlib.sha256(payload).digest(), lambda: None, reps)
            floors.append((label, mb / hash_s, hash_s, put_b[1], put_f[1]))
            for op, (nbd, raw) in (("put bytes", put_b), ("put file", put_f)):
                unhashed.append((label, op, nbd, raw, hash_s))
            for op, (nbd, raw) in (
                ("put bytes (pipe_file)", put_b),
                ("put file (put_file)", put_f),
                ("get bytes (cat_file)", get_b),
                ("get file (get_file)", get_f),
            ):
                rows.append((label, op, mb / nbd, mb / raw, raw / nbd))
            store.catalog.dispose()

    print(
        f"store throughput on {args.backend}://, median of {args.reps} (x20 for 1 MB) (MB/s; ratio = nbdeploy / raw fsspec)"
    )
    print(f"{'size':<7} {'operation':<22} {'nbdeploy':>10} {'raw fsspec':>11} {'ratio':>7}")
    for label, op, nbd, raw, ratio in rows:
        flag = "" if ratio >= 0.8 else "  (below 0.8 target)"
        print(f"{label:<7} {op:<22} {nbd:>10.0f} {raw:>11.0f} {ratio:>7.2f}{flag}")
    print("\nsha256 alone (what a content-addressed put adds to a raw write), and the best put ratio it allows:")
    print(
        f"{'size':<7} {'sha256 MB/s':>11} {'bytes: serial':>14} {'overlapped':>11} {'file: serial':>13} {'overlapped':>11}"
    )
    for label, rate, hash_s, raw_b, raw_f in floors:
        print(
            f"{label:<7} {rate:>11.0f} {raw_b / (raw_b + hash_s):>14.2f} {min(1.0, raw_b / hash_s):>11.2f}"
            f" {raw_f / (raw_f + hash_s):>13.2f} {min(1.0, raw_f / hash_s):>11.2f}"
        )

    print(
        "\nputs without the hashing: the real ratio, and the ratio once the time sha256 alone takes is subtracted"
        "\n(what is left besides hashing: the write path and the catalog insert; the real ratio is the one above)"
    )
    print(
        f"{'size':<7} {'operation':<10} {'nbdeploy ms':>12} {'raw ms':>9} {'sha256 ms':>10} {'ratio':>7} {'w/o sha256':>11}"
    )
    for label, op, nbd, raw, hash_s in unhashed:
        rest = max(nbd - hash_s, 1e-9)
        print(
            f"{label:<7} {op:<10} {nbd * 1e3:>12.3f} {raw * 1e3:>9.3f} {hash_s * 1e3:>10.3f} {raw / nbd:>7.2f}"
            f" {raw / rest:>11.2f}"
        )


if __name__ == "__main__":
    main()
