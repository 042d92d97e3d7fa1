"""`harness ui`: the MLflow UI on the harness's store."""

from __future__ import annotations

import argparse
import signal
import sys


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ui", help="start the MLflow UI on the harness's store")
    p.add_argument("--port", default="5000", help="the port the UI listens on (default: 5000)")
    p.add_argument("--host", default="127.0.0.1",
                   help="the address the UI listens on (default: 127.0.0.1, this machine only)")
    p.add_argument("--tracking-uri", help="store to show (default: as for sweep)")
    p.add_argument("--study", help="the study whose runs the link opens (default: the latest)")
    p.set_defaults(run=_ui)


def _ui(args: argparse.Namespace) -> int:
    from harness.tracking.store import LOCAL_STORE, client_for, tracking_uri
    from harness.tracking.ui import landing, mlflow_ui_command, serve, stop
    from harness.urls import redact

    store = tracking_uri(args.tracking_uri)
    LOCAL_STORE.mkdir(exist_ok=True)
    client = client_for(store)  # a new local store is created here, not racing the server
    base = f"http://{args.host}:{args.port}"
    link = landing(base, client, args.study)
    print(f"starting the MLflow UI for {redact(store)} (it can take a minute)...",
          file=sys.stderr)
    # the server runs in a session of its own: whatever ends this process must end it too
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: sys.exit(0))
    proc = serve(mlflow_ui_command(store, host=args.host, port=args.port),
                 health=f"{base}/health")
    print(f"ready: {link}   (Ctrl-C to stop)", file=sys.stderr)
    try:
        code: int = proc.wait()
        return code
    except KeyboardInterrupt:
        return 0
    finally:
        stop(proc)
