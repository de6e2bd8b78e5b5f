"""The ``sabre`` command line.

::

    sabre run CONFIG.toml [--set key=value ...] [--out DIR] [--device auto|cpu|cuda]
    sabre run --resume RUN_DIR [--set run.rounds=N ...]
    sabre run CONFIG.toml --transport tcp --processes N [--tls]   (a local server and N client processes)
    sabre serve CONFIG.toml (--writer-secrets FILE | --open-join) [--host H] [--port P]
                [--tls-cert C --tls-key K] [--set ...] [--out DIR]
    sabre client --server H:P --data PATH --writers IDS [--secrets FILE] [--tls-ca C] [--attack]
                 [--expect-config C] [--require-active] [--min-clients N]
    sabre writer-secrets --writers IDS --out FILE [--from FILE]
    sabre demo [--out DIR]
    sabre sweep SWEEP.toml [--engine local|ray] [--address ADDR] [--resources cpu=N,gpu=G] [--out DIR]
    sabre plot RUN_DIR... --out FILE.png
    sabre plot SWEEP_DIR --out FILE.png [--setting NAME --label LABEL]...
    sabre data info PATH
    sabre bench secagg ARGS...       (secagg.bench)
    sabre bench proof ARGS...        (rangeproof.bench)
    sabre bench net ARGS...          (fl.net.bench: one round across client processes)

``CONFIG`` is a path, or the name of a bundled config (``emnist_baseline``,
``configs/emnist_baseline.toml``), looked up in ``fl/configs/`` when no such file exists.
Configuration, data and file system errors print one line and exit with status 2 (a run
directory's integrity checks among them: docs/simulation.md).
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import sys
from pathlib import Path
from typing import Sequence

# OpenMP threads that spin while they wait take the core their partner needs on a shared machine
# (a paper-CNN round: 161 CPU-s with two spinning threads against 43 with one, on 2 loaded cores;
# docs/training.md); passive waiting changes no result. It must be set before torch loads, so
# here, above the imports that load it; an explicit setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import rangeproof.bench  # noqa: E402 - after the OpenMP setting above
import secagg.bench
from fl.config import BUNDLED_CONFIGS, ConfigError, find_config, load_config
from fl.data import load_dataset
from fl.data.info import describe
from fl.demo import DemoSettings, run_demo
from fl.experiment import resolve_data_path, resume_experiment, run_experiment
from fl.net import bench as net_bench
from fl.net.auth import load_secrets, make_secrets, write_secrets
from fl.net.client import parse_writers, run_clients
from fl.net.launch import run_local, serve
from fl.net.tls import client_context, server_context
from fl.plots import PlotError, plot_runs
from fl.rundir import os_error_text
from fl.sweep import load_sweep
from fl.sweep.plot import is_sweep_dir, plot_sweep
from fl.sweep.runner import SweepFailed, parse_resources, run_sweep
from rangeproof.blame import SabreError

__all__ = ["main", "find_config", "BUNDLED_CONFIGS"]

_USAGE_ERROR = 2


# ---------------------------------------------------------------------------- commands
def _cmd_run(args: argparse.Namespace) -> int:
    overrides = list(args.set or [])
    if args.device is not None:
        overrides.append(f"run.device={args.device}")
    if args.resume is not None:
        if args.config is not None or args.out is not None:
            raise ConfigError("--resume: give only the run directory (no CONFIG, no --out)")
        summary = resume_experiment(args.resume, overrides, progress=not args.quiet,
                                    warn=lambda text: print(f"sabre: warning: {text}", file=sys.stderr))
    else:
        if args.config is None:
            raise ConfigError("run: give a CONFIG file (or --resume RUN_DIR)")
        cfg = load_config(find_config(args.config), overrides)
        if args.transport == "tcp":
            summary = run_local(cfg, args.processes or 1, tls=args.tls, out=args.out, progress=not args.quiet,
                                log=_net_log("serve") if args.verbose else lambda s: None)
        else:
            if args.processes is not None or args.tls:
                raise ConfigError("run: --processes and --tls go with --transport tcp")
            summary = run_experiment(cfg, out=args.out, progress=not args.quiet)
    _print_summary(summary)
    return 0


def _net_log(who: str):
    return lambda text: print(f"sabre {who}: {text}", file=sys.stderr, flush=True)


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"--server: expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def _cmd_serve(args: argparse.Namespace) -> int:
    if (args.tls_cert is None) != (args.tls_key is None):
        raise ConfigError("serve: give --tls-cert and --tls-key together")
    if (args.writer_secrets is None) == (not args.open_join):
        raise ConfigError("serve: give --writer-secrets FILE (each writer proves its secret when it joins; make "
                          "the file with `sabre writer-secrets`) or --open-join (any process may claim any writer "
                          "id: only between processes that trust each other), not both")
    cfg = load_config(find_config(args.config), list(args.set or []))
    ctx = server_context(args.tls_cert, args.tls_key) if args.tls_cert else None
    table = load_secrets(args.writer_secrets) if args.writer_secrets else None
    log = _net_log("serve")
    summary = serve(cfg, host=args.host, port=args.port, ssl_context=ctx, out=args.out, progress=not args.quiet,
                    join_timeout=args.join_timeout, secagg_port=args.secagg_port, writer_secrets=table, log=log)
    _print_summary(summary)
    return 0


def _cmd_client(args: argparse.Namespace) -> int:
    host, port = _host_port(args.server)
    try:
        writers = parse_writers(args.writers)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    ctx = client_context(args.tls_ca) if args.tls_ca else None
    expect = load_config(find_config(args.expect_config)) if args.expect_config else None
    table = load_secrets(args.secrets) if args.secrets else None
    if table is not None and not set(writers) <= set(table):
        raise ConfigError(f"--secrets: no secret for writer(s) {sorted(set(writers) - set(table))[:8]}")
    run_clients(host, port, args.data, writers, ssl_context=ctx, server_hostname=args.tls_name,
                timeout=args.timeout, attack=args.attack, expect=expect, require_active=args.require_active,
                min_clients=args.min_clients, secrets=table, log=_net_log("client"))
    return 0


def _cmd_writer_secrets(args: argparse.Namespace) -> int:
    try:
        writers = parse_writers(args.writers)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    if args.source:  # cut a client machine's file from the server's
        table = load_secrets(args.source)
        missing = sorted(set(writers) - set(table))
        if missing:
            raise ConfigError(f"--from: {args.source} has no secret for writer(s) {missing[:8]}")
        table = {w: table[w] for w in writers}
    else:
        table = make_secrets(writers)
    path = write_secrets(args.out, table)
    print(f"{len(table)} writer secret(s) in {path} (readable by you only; give each client machine only its "
          f"own writers' file: `sabre writer-secrets --from {path} --writers IDS --out FILE`)")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    sizes = {k: v for k, v in (("clean_rounds", args.clean_rounds), ("attack_rounds", args.attack_rounds),
                               ("clients_per_round", args.clients), ("epochs", args.epochs), ("data", args.data))
             if v is not None}
    settings = dataclasses.replace(DemoSettings(), **sizes)
    if settings.clients_per_round < 3:
        raise ConfigError("demo --clients: secure aggregation needs at least 3 clients per round")
    out = Path(args.out) if args.out else Path("runs") / f"demo-{datetime.datetime.now():%Y%m%d-%H%M%S}"
    run_demo(out, settings)
    print(f"next: sabre run configs/fig4a_bound3.toml (the paper's Figure 4a on the real data), "
          f"sabre bench secagg --clients 30 --dim 1199882")
    return 0


def _print_summary(summary) -> None:
    m = summary.last_metrics
    state = "finished" if summary.finished else "stopped"
    print(f"{state} after {summary.rounds_done} rounds", end="")
    if m:
        print(f": main-task accuracy {m['main_acc']:.4f} (loss {m['main_loss']:.4f})", end="")
        extras = {k: v for k, v in m.items() if k.startswith("backdoor")}
        for key, value in sorted(extras.items()):
            print(f", {key} {value:.4f}", end="")
    print()
    if summary.failed_rounds:
        print(f"rounds failed (model not updated): {summary.failed_rounds}")
    print(f"run directory: {summary.run_dir}")
    print(f"  metrics.csv, rounds.csv, run.log, plot.png, config.toml, checkpoints/")


def _cmd_sweep(args: argparse.Namespace) -> int:
    spec = load_sweep(args.sweep)
    out = Path(args.out) if args.out else Path("runs") / f"sweep-{spec.source.stem}-{datetime.datetime.now():%Y%m%d-%H%M%S}"
    result = run_sweep(spec, out, engine=args.engine, address=args.address, resources=parse_resources(args.resources),
                       ray_cpus=args.ray_cpus, progress=not args.quiet,
                       log=lambda text: print(f"sabre: {text}", file=sys.stderr))
    print(f"sweep finished: {result.total} runs ({result.skipped} already done, {result.ran} run here)")
    print(result.privacy_text)
    print(f"sweep directory: {result.out}")
    print(f"  summary.csv, curves.csv, privacy.json, plot.png, sweep.json, runs/<setting>/seed_<n>/")
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    sweeps = [r for r in args.runs if is_sweep_dir(r)]
    if sweeps:
        if len(args.runs) != 1:
            raise PlotError("plot: give one sweep directory alone (or run directories)")
        if args.label and not args.setting:
            raise PlotError("plot: with a sweep, --label names the settings chosen with --setting")
        out = plot_sweep(sweeps[0], args.out, title=args.title, settings=args.setting, labels=args.label)
        print(f"wrote {out}")
        return 0
    if args.setting:
        raise PlotError("plot: --setting picks settings of a sweep directory; give one")
    out = plot_runs(args.runs, args.out, labels=args.label, title=args.title)
    print(f"wrote {out}")
    return 0


def _cmd_data_info(args: argparse.Namespace) -> int:
    print(describe(load_dataset(resolve_data_path(args.path))))
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    bench = {"secagg": secagg.bench, "proof": rangeproof.bench, "net": net_bench}[args.target]
    argv = list(args.args)
    if argv[:1] == ["--"]:
        argv = argv[1:]
    return int(bench.main(argv) or 0)


# ---------------------------------------------------------------------------- parser
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sabre",
        description="SecAgg-aware backdoor robustness evaluation: federated training, attacks and defenses.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="train a federated model from a TOML config",
                         description="Train a federated model. CONFIG is a TOML file or a bundled config name.")
    run.add_argument("config", nargs="?", metavar="CONFIG", help="TOML config file or bundled config name")
    run.add_argument("--set", action="append", metavar="KEY=VALUE",
                     help="override a setting, e.g. --set fedavg.epochs=1 (TOML literal; repeatable)")
    run.add_argument("--out", metavar="DIR", help="run directory (default runs/<name>-<timestamp>)")
    run.add_argument("--resume", metavar="RUN_DIR",
                     help="continue a stopped run from its newest good checkpoint (or start over one that has none)")
    run.add_argument("--device", choices=["auto", "cpu", "cuda"], help="shorthand for --set run.device=...")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    run.add_argument("--transport", choices=["inprocess", "tcp"], default="inprocess",
                     help="tcp: a local server and --processes client processes on 127.0.0.1 (needs "
                          "aggregation.secure = true); the same model as in process")
    run.add_argument("--processes", type=int, metavar="N", help="client processes for --transport tcp (default 1)")
    run.add_argument("--tls", action="store_true", help="with --transport tcp: TLS with a CA and certificate made "
                                                        "for this run in a temporary directory")
    run.add_argument("-v", "--verbose", action="store_true", help="with --transport tcp: log the server's events")
    run.set_defaults(func=_cmd_run)

    srv = sub.add_parser("serve", help="serve a federated run to client processes (sabre client)",
                         description="Run the server of a federated run: each round samples among the connected "
                                     "clients, sends the model, runs the pipeline's server halves and writes the "
                                     "run directory as sabre run does.")
    srv.add_argument("config", metavar="CONFIG", help="TOML config file or bundled config name")
    srv.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    srv.add_argument("--port", type=int, default=0, help="port to listen on (default: a free one, printed)")
    srv.add_argument("--secagg-port", type=int, default=0,
                     help="port of each round's secure aggregation (default: a free one per round)")
    srv.add_argument("--tls-cert", metavar="PEM", help="server certificate (with --tls-key)")
    srv.add_argument("--tls-key", metavar="PEM", help="the certificate's private key")
    srv.add_argument("--join-timeout", type=float, default=600.0,
                     help="seconds to wait for the writers to connect before the first round (default 600)")
    srv.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a setting (repeatable)")
    srv.add_argument("--out", metavar="DIR", help="run directory (default runs/<name>-<timestamp>)")
    srv.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    srv.add_argument("--writer-secrets", metavar="FILE",
                     help="every writer's secret (sabre writer-secrets): a connection joins as a writer only with "
                          "a proof of its secret")
    srv.add_argument("--open-join", action="store_true",
                     help="no writer secrets: any process may claim any writer id (only between processes that "
                          "trust each other)")
    srv.set_defaults(func=_cmd_serve)

    cli = sub.add_parser("client", help="play one or more clients of a sabre serve run",
                         description="Run clients of a federated run: local training on each writer's own data, "
                                     "the pipeline's client halves, and the secure aggregation protocol.")
    cli.add_argument("--server", required=True, metavar="HOST:PORT", help="the server")
    cli.add_argument("--data", required=True, metavar="PATH", help="this machine's copy of the dataset")
    cli.add_argument("--writers", required=True, metavar="IDS", help="writer ids to play, e.g. 0,3,5-7")
    cli.add_argument("--tls-ca", metavar="PEM", help="CA certificate the server's certificate must chain to")
    cli.add_argument("--tls-name", metavar="NAME", help="host name the server's certificate must carry "
                                                         "(default: the --server host)")
    cli.add_argument("--timeout", type=float, default=600.0,
                     help="seconds to wait for the server at any point (default 600)")
    cli.add_argument("--attack", action="store_true",
                     help="play the config's [attack] for these writers when its schedule makes them malicious")
    cli.add_argument("--expect-config", metavar="CONFIG",
                     help="the run's config as agreed (a path or a bundled name): refuse a server whose config has "
                          "other [aggregation] settings or clients_per_round (without it the server chooses how "
                          "your update is protected)")
    cli.add_argument("--require-active", action="store_true",
                     help="refuse a run without SecAgg's active variant (aggregation.secagg_active)")
    cli.add_argument("--min-clients", type=int, default=3, metavar="N",
                     help="refuse to join a SecAgg round of fewer than N clients (default 3, the least)")
    cli.add_argument("--secrets", metavar="FILE",
                     help="these writers' secrets (sabre writer-secrets): each proves its own when it joins")
    cli.set_defaults(func=_cmd_client)

    ws = sub.add_parser("writer-secrets", help="make the writers' secrets of a sabre serve run, or cut a client's "
                                                "share from them",
                        description="Each writer proves a secret of its own when it joins a sabre serve run. This "
                                    "makes a fresh secret per writer (the server's file), or with --from cuts the "
                                    "secrets of some writers from it (a client machine's file).")
    ws.add_argument("--writers", required=True, metavar="IDS", help="writer ids, e.g. 0-383 or 0,3,5-7")
    ws.add_argument("--out", required=True, metavar="FILE", help="the file to write (must not exist)")
    ws.add_argument("--from", dest="source", metavar="FILE", help="cut the secrets of --writers from this file")
    ws.set_defaults(func=_cmd_writer_secrets)

    demo = sub.add_parser("demo", help="the whole story on built-in data: clean training, a boosted backdoor "
                                       "attack, and the same attack under SecAgg with a proven norm bound")
    demo.add_argument("--out", metavar="DIR", help="output directory (default runs/demo-<timestamp>)")
    demo.add_argument("--data", help="dataset spec (default: the built-in synthetic writers)")
    demo.add_argument("--clients", type=int, help="clients per round (at least 3)")
    demo.add_argument("--epochs", type=int, help="local epochs")
    demo.add_argument("--clean-rounds", type=int, help="rounds of clean training before the attack")
    demo.add_argument("--attack-rounds", type=int, help="attack rounds in each of the two arms")
    demo.add_argument("-q", "--quiet", action="store_true", help="accepted for symmetry with run; the demo has no bar")
    demo.set_defaults(func=_cmd_demo)

    sweep = sub.add_parser(
        "sweep", help="run a grid of settings x seeds and summarise it across seeds",
        description="Run every (setting, seed) of a sweep file, one run directory each, skipping finished runs and "
                    "continuing stopped ones; then write summary.csv (mean, std and 95% CI of every metric "
                    "across seeds), curves.csv and plot.png. SWEEP is a TOML file or a bundled sweep name.")
    sweep.add_argument("sweep", metavar="SWEEP", help="sweep TOML file or bundled sweep name")
    sweep.add_argument("--engine", choices=["local", "ray"], default="local",
                       help="local: one run after another in this process; ray: one Ray task per run (default local)")
    sweep.add_argument("--address", metavar="ADDR", help="an existing Ray cluster (default: start a local Ray)")
    sweep.add_argument("--resources", metavar="cpu=N,gpu=G",
                       help="what each run gets: CPUs (its torch threads; default 1), GPUs and custom Ray resources")
    sweep.add_argument("--ray-cpus", type=int, metavar="N", help="CPUs of the local Ray started here (default: all)")
    sweep.add_argument("--out", metavar="DIR", help="sweep directory (default runs/sweep-<name>-<timestamp>); "
                                                    "give an existing one to continue it")
    sweep.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    sweep.set_defaults(func=_cmd_sweep)

    plot = sub.add_parser("plot", help="plot accuracy per round of one or more runs, or of a sweep")
    plot.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories, or one sweep directory")
    plot.add_argument("--out", required=True, metavar="FILE.png")
    plot.add_argument("--label", action="append",
                      help="legend name of each run (or of each --setting of a sweep), in order (repeatable)")
    plot.add_argument("--setting", action="append", metavar="NAME",
                      help="with a sweep directory: draw only this setting, in the order given (repeatable)")
    plot.add_argument("--title")
    plot.set_defaults(func=_cmd_plot)

    data = sub.add_parser("data", help="inspect datasets")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="SUBCOMMAND")
    info = data_sub.add_parser("info", help="summarise a dataset: writers, images, labels")
    info.add_argument("path", metavar="PATH", help="'synthetic[:N[:SEED]]', a .npz file, a TFF h5 or LEAF directory")
    info.set_defaults(func=_cmd_data_info)

    bench = sub.add_parser("bench", help="benchmarks of the cryptographic parts",
                           description="Run a benchmark; the remaining arguments go to it "
                                       "(try: sabre bench secagg --help).")
    bench.add_argument("target", choices=["secagg", "proof", "net"])
    bench.add_argument("args", nargs=argparse.REMAINDER, help="passed to the benchmark")
    bench.set_defaults(func=_cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sabre`` console script.

    Args:
      argv: the arguments (``sys.argv[1:]`` when ``None``).

    Returns:
      The exit status: 0 on success, 2 for a configuration, data or usage error (one line on
      stderr, no traceback), 130 when interrupted.
    """
    args = _parser().parse_args(argv)
    try:
        return args.func(args)
    except SweepFailed as e:  # a SabreError too: caught first, for its per-run lines
        for where, why in e.failures:
            print(f"sabre: error: run {where} failed: {why}", file=sys.stderr)
        print(f"sabre: {len(e.failures)} run(s) failed; the others are finished. Run the sweep again to retry them.",
              file=sys.stderr)
        return 1
    except SabreError as e:  # the project's one root: configuration, data, protocol, proof, ...
        print(f"sabre: error: {_one_line(e)}", file=sys.stderr)
        return _USAGE_ERROR
    except KeyboardInterrupt:
        print("sabre: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`sabre data info ... | head`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as e:  # a file system error the command did not word itself: still one line
        print(f"sabre: error: {_one_line(e)}", file=sys.stderr)
        return _USAGE_ERROR


def _one_line(error: BaseException) -> str:
    if isinstance(error, OSError) and error.filename is not None:
        text = os_error_text(error)
    else:
        text = str(error)
    blamed = getattr(error, "blamed", ())
    if blamed:
        text += f" (blamed: {', '.join(map(str, blamed))})"
    return " ".join(text.split())
