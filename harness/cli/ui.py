"""`harness ui`: the MLflow UI on the harness's store."""

from __future__ import annotations

import argparse
import subprocess
import sys

from harness.cli.types import port


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ui", help="start the MLflow UI on the harness's store")
    p.add_argument("--port", type=port, default=5000,
                   help="the port the UI listens on (default: 5000)")
    p.add_argument("--host", default="127.0.0.1",
                   help="the address the UI listens on (default: 127.0.0.1, this machine only)")
    p.add_argument("--tracking-uri", help="store to show (default: as for sweep)")
    p.add_argument("--study", help="the study whose runs the link opens (default: the latest)")
    p.set_defaults(run=_ui)


def _ui(args: argparse.Namespace) -> int:
    from harness.procs import stop_signals_as_interrupt
    from harness.tracking.store import LOCAL_STORE, client_for, tracking_uri
    from harness.tracking.ui import landing, mlflow_ui_command, serve
    from harness.urls import redact

    store = tracking_uri(args.tracking_uri)
    LOCAL_STORE.mkdir(exist_ok=True)
    client = client_for(store)  # a new local store is created here, not racing the server
    link = landing(f"http://{args.host}:{args.port}", client, args.study)
    print(f"starting the MLflow UI for {redact(store)} (it can take a minute)...",
          file=sys.stderr)
    # the server runs in a session of its own: whatever ends this process must end it too
    with stop_signals_as_interrupt():
        proc = serve(mlflow_ui_command(store, host=args.host, port=args.port),
                     host=args.host, port=args.port)
        print(f"ready: {link}   (Ctrl-C to stop)", file=sys.stderr)
        # MLflow's own links drop the view the link names; a click on the switch persists it
        print("  if a page opens in the GenAI view, pick 'Model training' at the top left once: "
              "the browser keeps it", file=sys.stderr)
        return _until_stopped(proc)


def _until_stopped(proc: subprocess.Popen[bytes]) -> int:
    """The server's exit code, or 0 when Ctrl-C (or SIGTERM, SIGHUP) stopped it; its whole
    process group ends either way."""
    from harness.procs import stop_through_interrupts

    try:
        code = proc.wait()
        print(f"harness: the MLflow UI server ended with code {code}", file=sys.stderr)
        return code
    except KeyboardInterrupt:
        return 0
    finally:
        stop_through_interrupts(proc)
