"""The API process: `python -m runtime.serve --bundle DIR --host 127.0.0.1 --port N`.

Runs `runtime.server.create_app` under uvicorn (one worker: the model and TensorFlow's
thread pools are per process; `--tf-threads` sizes those pools). SIGTERM stops it
gracefully. `--no-admin` leaves out
POST /admin/reload, for deployments that swap models by rolling out new pods; with
`MLP_ADMIN_TOKEN` set in its environment, the endpoint wants `Authorization: Bearer <token>`.
`--max-body-bytes N` sets the largest request body (4 MiB by default); a larger one gets 413.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive number of bytes, not {text}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runtime.serve")
    parser.add_argument("--bundle", help="the bundle folder to serve; none: wait for a reload")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--no-admin", action="store_true", help="no POST /admin/reload")
    parser.add_argument("--log-level", default="warning")
    parser.add_argument("--tf-threads", type=int, default=1,
                        help="TensorFlow op threads (0: one per core); 1 gives the lowest "
                             "latency for the small models mlp trains")
    parser.add_argument("--max-body-bytes", type=_positive, metavar="N",
                        help="the largest request body in bytes; a larger one gets 413 "
                             "(default: runtime.server.MAX_BODY_BYTES, 4 MiB)")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # oneDNN's kernels cost more to set up per call than the small models mlp trains take
    # to run: TensorFlow's own kernels answer a single instance faster (bench/serve).
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.tf_threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.tf_threads)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import uvicorn

    from runtime.server import MAX_BODY_BYTES, create_app

    # the token arrives in the environment, not on the command line that `ps` shows
    token = os.environ.pop("MLP_ADMIN_TOKEN", None) or None
    app = create_app(args.bundle, admin=not args.no_admin, admin_token=token,
                     max_body_bytes=args.max_body_bytes or MAX_BODY_BYTES)
    print(f"mlp: serving {args.bundle} on http://{args.host}:{args.port} (request bodies up to "
          f"{args.max_body_bytes or MAX_BODY_BYTES} bytes)", file=sys.stderr, flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level,
                access_log=False, timeout_graceful_shutdown=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
