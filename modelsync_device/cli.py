"""``python -m modelsync_device sync|predict|status`` (also ``modelsync device ...``, which reuses this).

Keep a device's model in sync with the registry, score offline, show status; see docs/devices.md.
Exit codes: 0 ok, 1 refused (or predict failed / nothing installed), 2 configuration error, 3 offline,
4 authentication failed (the API answered 401/403: check --auth and the credentials).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from scorer import InvalidInput, InvalidModel, MethodNotSupported, tabular

from .auth import AuthError, AuthOpener, add_auth_arguments, auth_from_args
from .client import SyncResult, install_bundled, sync
from .loop import SyncLoop, serve_notifications
from .store import ModelStore, StoreError
from .telemetry import Telemetry
from .transport import DOWNLOAD_DEADLINE_SECONDS, MIN_DOWNLOAD_RATE

log = logging.getLogger("modelsync_device")

EXIT_REFUSED = 1
EXIT_OFFLINE = 3
EXIT_UNAUTHORIZED = 4
DESCRIPTION = "keep a device's model in sync with the modelsync registry and score offline"


def add_commands(parser: argparse.ArgumentParser) -> None:
    """Add the ``sync``, ``predict`` and ``status`` actions to ``parser`` (each sets ``args.func``)."""
    sub = parser.add_subparsers(dest="device_command", required=True, metavar="ACTION")

    p = sub.add_parser("sync", help="fetch the model from the registry (once, or polling)")
    p.add_argument("--api", required=True, help="registry API base URL")
    p.add_argument("--model", required=True, help="model name")
    p.add_argument("--dir", required=True, help="the device's model store directory")
    p.add_argument("--alias", default="latest",
                   help="alias to follow, e.g. production or canary (default: latest)")
    p.add_argument("--version", type=int, metavar="N", help="pin this version instead of following an alias")
    p.add_argument("--device-id", help="sent as X-Device-Id (canary routing, telemetry)")
    p.add_argument("--public-key", metavar="PEM",
                   help="ECDSA P-256 public key file: refuse manifests not signed with it")
    p.add_argument("--interval", type=float, default=300.0, metavar="SECONDS",
                   help="poll interval (default 300, +/-10%% jitter)")
    p.add_argument("--once", action="store_true",
                   help="sync once and exit (exit code 1 refused, 3 offline, 4 authentication failed)")
    p.add_argument("--download-deadline", type=float, default=DOWNLOAD_DEADLINE_SECONDS, metavar="SECONDS",
                   help="abandon a document download not finished in this time (default %(default)g); "
                        "the current model stays active and the next sync retries")
    p.add_argument("--min-download-rate", type=float, default=MIN_DOWNLOAD_RATE, metavar="BYTES_PER_S",
                   help="abandon a download slower than this on average after its first seconds "
                        "(default %(default)g)")
    p.add_argument("--no-telemetry", action="store_true", help="do not upload telemetry after syncing")
    p.add_argument("--listen", metavar="HOST:PORT",
                   help="also accept SNS notifications (HTTP POST) here to sync immediately")
    add_auth_arguments(p)
    p.set_defaults(func=cmd_sync)

    p = sub.add_parser("install", help="install a model document shipped with the app (verified) as the "
                                       "starting point; a later sync replaces it")
    p.add_argument("--dir", required=True, help="the device's model store directory")
    p.add_argument("--model", help="model name (default: the document's metadata.name)")
    p.add_argument("--version", type=int, default=0, metavar="N",
                   help="its registry version, when known (default 0: bundled)")
    p.add_argument("--force", action="store_true", help="replace the active model (default: keep it)")
    p.add_argument("document", help="the model document (JSON) shipped with the app")
    p.set_defaults(func=cmd_install)

    p = sub.add_parser("predict", help="score a CSV with the active model (offline) to stdout")
    p.add_argument("--dir", required=True, help="the device's model store directory")
    p.add_argument("--model", help="model name (needed only when the store holds several)")
    p.add_argument("--no-telemetry", action="store_true", help="do not record telemetry")
    p.add_argument("--outputs", metavar="METHOD[,METHOD...]", type=tabular.parse_outputs,
                   help="the methods to write, in order (predict, predict_proba, decision_function, "
                        "transform; default: prediction + proba_<class> when the model has them)")
    p.add_argument("data", help="CSV file with a header row naming the features ('-' for stdin)")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("status", help="show the installed versions, last sync and pending telemetry")
    p.add_argument("--dir", required=True, help="the device's model store directory")
    p.add_argument("--model", help="only this model")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_status)


def build_parser(prog: str = "python -m modelsync_device") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    add_commands(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


def run(args: argparse.Namespace) -> int:
    """Log to stderr (debug with ``-v``) and run the chosen action; 130 on Ctrl-C. ``modelsync`` runs its
    commands through this too."""
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s",
                        stream=sys.stderr)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


def _out(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


# -- sync -------------------------------------------------------------------------------------------

def _exit_code(result: SyncResult) -> int:
    return {"refused": EXIT_REFUSED, "offline": EXIT_OFFLINE, "unauthorized": EXIT_UNAUTHORIZED}.get(
        result.status, 0)


def cmd_sync(args: argparse.Namespace) -> int:
    store = ModelStore(args.dir)
    telemetry = None if args.no_telemetry else Telemetry(args.dir)
    try:
        opener = AuthOpener(args.api, auth_from_args(args, args.api))
        if args.once:
            result = sync(args.api, args.model, store, alias=args.alias, device_id=args.device_id,
                          public_key=args.public_key, http=opener, version=args.version,
                          download_timeout=args.download_deadline, min_download_rate=args.min_download_rate)
            _out(json.dumps(result.as_dict(), sort_keys=True))
            if result.status == "unauthorized":
                log.error("device sync: authentication failed (%s); the current model stays active",
                          result.reason)
            if telemetry is not None and result.status in ("updated", "unchanged", "refused"):
                flushed = telemetry.flush(args.api, args.model, args.device_id, http=opener)
                if flushed.status == "failed":
                    log.warning("telemetry not uploaded: %s (%d batches kept)", flushed.reason,
                                flushed.remaining)
            return _exit_code(result)
        loop = SyncLoop(args.api, args.model, store, alias=args.alias, device_id=args.device_id,
                        public_key=args.public_key, http=opener, interval=args.interval,
                        telemetry=telemetry, version=args.version,
                        download_deadline=args.download_deadline, min_download_rate=args.min_download_rate,
                        on_result=lambda r: _out(json.dumps(r.as_dict(), sort_keys=True)))
    except (ValueError, OSError, RuntimeError, AuthError) as exc:  # configuration: name, key, credentials
        log.error("device sync: %s", exc)
        return 2
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    server = None
    if args.listen:
        host, _, port = args.listen.rpartition(":")
        server = serve_notifications(loop, host or "127.0.0.1", int(port))
        log.info("listening for notifications on http://%s:%s/", *server.server_address[:2])
    try:
        loop.run_forever(stop)
    finally:
        if server is not None:
            server.shutdown()
    return 0


def cmd_install(args: argparse.Namespace) -> int:
    try:
        result = install_bundled(args.document, ModelStore(args.dir), args.model, args.version,
                                 force=args.force)
    except (ValueError, OSError) as exc:
        log.error("device install: %s", exc)
        return EXIT_REFUSED
    _out(json.dumps(result.as_dict(), sort_keys=True))
    return 0


# -- predict ----------------------------------------------------------------------------------------

def _pick_model(store: ModelStore, name: str | None) -> str:
    if name:
        return name
    models = store.models()
    if not models:
        raise StoreError(f"no model installed in {store.root}: run a sync first")
    if len(models) > 1:
        raise StoreError(f"{store.root} holds several models ({', '.join(models)}): pass --model")
    return models[0]


def predict_csv(store: ModelStore, name: str, src: tabular.Readable, out: tabular.Writable,
                telemetry: Telemetry | None = None, outputs: Sequence[str] | None = None) -> int:
    """Score the CSV byte stream ``src`` into ``out`` with the active model (offline), in the one table
    shape of every path (``scorer.tabular``): the input columns, ``prediction``, then ``proba_<class>``
    per class when the model has probabilities (``outputs``: those methods' columns instead). Returns
    the number of rows scored; each chunk's main output (predict, else transform) is one telemetry call.
    """
    model = store.scoring_model(name, telemetry)
    return tabular.score_table(model, tabular.TableReader(src, "csv"), out, proba=None,
                               outputs=outputs).scored


def cmd_predict(args: argparse.Namespace) -> int:
    store = ModelStore(args.dir)
    telemetry = None if args.no_telemetry else Telemetry(args.dir)
    try:
        name = _pick_model(store, args.model)
        if args.outputs:
            try:  # a method the model lacks is a usage mistake (exit 2), said before reading the data
                tabular.output_methods(store.scoring_model(name), args.outputs)
            except MethodNotSupported as exc:
                log.error("device predict: --outputs: %s", exc)
                return 2
        sys.stdout.flush()
        if args.data == "-":
            n = predict_csv(store, name, sys.stdin.buffer, sys.stdout.buffer, telemetry, args.outputs)
        else:
            with open(args.data, "rb") as f:
                n = predict_csv(store, name, f, sys.stdout.buffer, telemetry, args.outputs)
        sys.stdout.buffer.flush()
    except (StoreError, InvalidInput, InvalidModel, MethodNotSupported, OSError, ValueError) as exc:
        log.error("device predict: %s", exc)
        return 1
    finally:
        if telemetry is not None:
            try:
                telemetry.save()
            except OSError as exc:
                log.warning("telemetry not saved: %s", exc)
    entry = store.loaded_entry(name)
    log.info("scored %d rows with %s version %s", n, name, entry["version"])
    return 0


# -- status -----------------------------------------------------------------------------------------

def model_status(store: ModelStore, name: str) -> dict[str, Any]:
    state = store.read_state(name) or {}
    snap = Telemetry(store.root).snapshot(name)
    return {
        "model": name,
        "active": state.get("active"),
        "previous": state.get("previous"),
        "alias": state.get("alias"),
        "revision": state.get("revision"),
        "etag": state.get("etag"),
        "last_sync": store.last_sync(name),
        "telemetry": {
            "pending_batches": len(snap["pending"]),
            "open_windows": len(snap["open"]),
            "dropped_batches": snap["dropped_batches"],
            "rows_unsent": sum(w["rows"] for w in [*snap["pending"], *snap["open"].values()]),
        },
    }


def _describe(entry: dict[str, Any] | None) -> str:
    if not entry:
        return "-"
    return (f"version {entry['version']} (sha256 {entry['sha256'][:12]}, revision {entry.get('revision')}, "
            f"installed {entry.get('installed_at')})")


def cmd_status(args: argparse.Namespace) -> int:
    store = ModelStore(args.dir)
    names: Sequence[str] = [args.model] if args.model else store.models()
    statuses = [model_status(store, n) for n in names]
    if args.json:
        _out(json.dumps(statuses, indent=2, sort_keys=True))
        return 0 if statuses else 1
    if not statuses:
        _out(f"no model installed in {args.dir}")
        return 1
    for s in statuses:
        last = s["last_sync"] or {}
        t = s["telemetry"]
        _out(f"{s['model']}  alias {s['alias']}  revision {s['revision']}")
        _out(f"  active:    {_describe(s['active'])}")
        _out(f"  previous:  {_describe(s['previous'])}")
        if last:
            reason = f" - {last['reason']}" if last.get("reason") else ""
            _out(f"  last sync: {last.get('at')} {last.get('status')}{reason}")
        _out(f"  telemetry: {t['pending_batches']} batches pending, {t['rows_unsent']} rows unsent, "
             f"{t['dropped_batches']} dropped")
    return 0
