"""The ``structure-bench`` command line."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any, NoReturn, Sequence

import numpy as np
import pandas as pd

from structure_bench.errors import StructureBenchError


def _print_frame(frame: pd.DataFrame) -> None:
    with pd.option_context("display.width", 200, "display.max_columns", 40, "display.max_colwidth", 60):
        print(frame.to_string(index=False, float_format=lambda v: f"{v:.3f}"))


def _parse_params(items: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``method.key=value`` (value parsed as JSON when it can be) -> {method: {key: value}}."""
    params: dict[str, dict[str, Any]] = {}
    for item in items:
        target, sep, raw = item.partition("=")
        method, dot, key = target.rpartition(".")
        if not sep or not dot or not method or not key:
            raise StructureBenchError(f"bad --param {item!r}: expected METHOD.KEY=VALUE, e.g. topk-sae.lr=0.001")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        params.setdefault(method, {})[key] = value
    return params


def _count(minimum: int) -> Any:
    """An argparse type: an integer >= ``minimum``, else a one-line usage error."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value}: must be at least {minimum}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def _cell(text: str) -> Any:
    """``NxK`` (n_latents x l0_target), e.g. ``256x8`` -> Cell(256, 8)."""
    from structure_bench.task import Cell

    width, sep, l0 = text.lower().partition("x")
    if not sep or not width.isdigit() or not l0.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not N_LATENTSxL0, e.g. 256x8")
    return Cell(int(width), int(l0))


def _cells(args: argparse.Namespace) -> list[Any] | None:
    """The cells chosen by --cells, or by --widths x --l0 (all pairs); None: each task's own grid."""
    from structure_bench.task import Cell

    if args.cells and (args.widths or args.l0):
        raise StructureBenchError("give --cells, or --widths with --l0, not both")
    if bool(args.widths) != bool(args.l0):
        raise StructureBenchError("--widths and --l0 go together (every width is run at every L0)")
    if args.widths:
        return [Cell(width, l0) for width in args.widths for l0 in args.l0]
    return args.cells


# -- commands -------------------------------------------------------------------------------

def cmd_tasks(args: argparse.Namespace) -> None:
    from structure_bench.kinds import kind_of
    from structure_bench.registry import list_tasks, make

    rows = []
    for task_id in list_tasks():
        task = make(task_id)
        for site in task.sites:
            rows.append(
                {
                    "id": task_id if site == task.sites[0] else "",
                    "suite": ("default" if not task.metadata.superseded_by else f"superseded by {task.metadata.superseded_by}")
                    if site == task.sites[0] else "",
                    "site": site + (" *" if site == task.metadata.default_site else ""),
                    "n": len(task.arrays.inputs),
                    "d": task.activations(site, "all").shape[1],
                    "structures": ", ".join(
                        f"{name} ({kind_of(s).describe(s)})"
                        + (" [primary]" if site == task.metadata.default_site and name == task.metadata.primary else "")
                        for name, s in task.structures(site).items()
                    ),
                    "main_score": task.metadata.main_score if site == task.metadata.default_site else "",
                    "identity": task.identity[:12] if site == task.sites[0] else "",
                }
            )
    _print_frame(pd.DataFrame(rows))
    print(
        "\n* default site; identity: the first 12 hex digits (`structure-bench identity` prints it whole); "
        "`run` and `submit` take the default suite unless given --tasks"
    )


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_format_value(v) for v in value) + "]"
    return str(value)


def cmd_show(args: argparse.Namespace) -> None:
    from structure_bench.registry import make

    task = make(args.task)
    print(task.card_text.rstrip())
    print(f"\n## {task.id}: recomputed now\n")
    print(f"identity:    {task.identity} ({_identity_status(task)})")
    print(f"fingerprint: {task.fingerprint} (exact bytes of the arrays: this machine's cache only)")
    print(f"main score:  {task.metadata.main_score} (default site {task.metadata.default_site!r})")
    print(f"grid:        {', '.join(cell.name for cell in task.metadata.grid)}")
    from structure_bench.metrics.reconstruction import principal_dimensions

    for site in task.sites:
        X = task.activations(site, "train")
        n_train, d = X.shape
        print(f"site {site}: d={d}, train={n_train}, test={len(task.activations(site, 'test'))}")
        print(
            f"  capacity: {len(np.unique(X, axis=0))} distinct train inputs; {principal_dimensions(X, 0.99)} / "
            f"{principal_dimensions(X, 0.999)} principal directions carry 99% / 99.9% of the variance"
        )
        for name, structure in task.structures(site).items():
            print(f"  {name}: {structure.kind}, size {structure.size}")
    figures = task.validate()
    if figures:
        print("\nvalidation figures:")
        width = max(len(k) for k in figures)
        for key, value in figures.items():
            print(f"  {key:<{width}}  {_format_value(value)}")


def _identity_status(task: Any) -> str:
    """How the task's identity was reached, in words (see ``structure_bench.identity.IdentityCheck``)."""
    check = task.identity_check
    if check.status == "pinned":
        return f"matches its pin in {check.pin_file}"
    if check.status == "differs":
        return f"differs from its pin in {check.pin_file}: {check.detail}"
    if check.status == "other definition":
        return f"not pinned: {check.detail}"
    return "not pinned: from this machine's statistics; `structure-bench identity --pin` makes it portable"


def cmd_identity(args: argparse.Namespace) -> None:
    import os

    from structure_bench.identity import check_identity, pin
    from structure_bench.registry import list_tasks, make

    differing = []
    for task_id in args.tasks or list_tasks():
        task = make(task_id)
        if args.pin:
            folder = task.identity_check.pin_file.parent
            if not os.access(folder, os.W_OK):
                print(f"{task.id}: {task.identity} (not pinned: {folder} is not writable)")
                continue
            pin(task)
            task.identity_check = check_identity(task)
            print(f"{task.id}: {task.identity} (pinned to {task.identity_check.pin_file})")
            continue
        print(f"{task.id}: {task.identity} ({_identity_status(task)})")
        if task.identity_check.status == "differs":
            differing.append(task.id)
    if differing:
        raise StructureBenchError(
            f"{', '.join(differing)} differ from their pins: this machine gives other task data "
            "(or the task changed: give it a new version, or re-pin with --pin)"
        )


def cmd_methods(args: argparse.Namespace) -> None:
    from structure_bench.methods import list_methods

    _print_frame(list_methods())


def cmd_schema(args: argparse.Namespace) -> None:
    from structure_bench.results import RESULT_SCHEMA

    print(json.dumps(RESULT_SCHEMA, indent=2))


def report_tables(out: Path) -> None:
    """Print the summary of a results directory and the profile view of each task in it."""
    from structure_bench.results import load_results
    from structure_bench.summary import latent_view, profile, summarise

    frame = load_results(out)
    if frame.empty:
        print(f"no results in {out}")
        return
    summary = summarise(frame, out)
    for task_id, rows in summary.groupby("task", sort=False):
        print(f"\n=== {task_id}: main score {rows.main_score_name.iloc[0]} (norm: random 0, oracle 1)")
        _print_frame(rows.drop(columns=["task", "main_score_name"]))
        print(f"\n--- {task_id} profile: what do the latents align with? (means over seeds)")
        _print_frame(profile(frame, task_id))
        latents = latent_view(frame, task_id)
        if not latents.empty:
            print(f"\n--- {task_id} what each latent is: share of code variance per class (metrics/latents.py); "
                  "fvu_omp: OMP codes for the method's own decoder at the cell's L0; reference_fvu: best hypothesis "
                  "reference within that L0")
            _print_frame(latents)
    failures = frame[frame.status == "failed"]
    if len(failures):
        print(f"\n{len(failures)} failed fits:")
        _print_frame(failures[["task", "site", "method", "n_latents", "l0_target", "seed", "error"]])


def cmd_run(args: argparse.Namespace) -> int:
    from structure_bench.methods import builtin_methods
    from structure_bench.planning import plan
    from structure_bench.registry import default_suite
    from structure_bench.runner import run

    if args.plots:
        from structure_bench.report.figures import require_matplotlib

        require_matplotlib("--plots (the report's figures)")
    tasks = args.tasks or default_suite()
    methods = list(dict.fromkeys(args.methods or builtin_methods()))
    if not args.no_calibration:  # the methods declaring each calibration role, unless one is run
        from structure_bench.methods import calibration_methods, calibration_role

        present = {calibration_role(m) for m in methods}
        methods += [m for role, m in calibration_methods().items() if role not in present]
    units = plan(tasks, methods, args.seeds, site=args.site, params=_parse_params(args.param), cells=_cells(args))
    started = time.perf_counter()
    records = run(
        units, args.out, jobs=args.jobs, retry_failed=args.retry_failed, progress=not args.quiet, save_codes=args.plots,
        executor=args.executor, threads=args.threads, address=args.address,
    )
    elapsed = time.perf_counter() - started
    skipped = len(units) - len(records)
    print(f"\n{len(records)} fits in {elapsed:.1f} s ({skipped} already finished) -> {args.out}")
    report_tables(Path(args.out))
    if args.plots:
        from structure_bench.report import write_report

        print(f"report: {write_report(args.out, jobs=args.jobs)}")
    failed = failed_units(units, Path(args.out))
    if failed:
        print(
            f"structure-bench: {len(failed)} of {len(units)} fits failed (listed above; `--retry-failed` re-runs them)"
            + ("" if args.allow_failures else "; exit status 1 (--allow-failures exits 0)"),
            file=sys.stderr,
        )
        return 0 if args.allow_failures else 1
    return 0


def failed_units(units: Sequence[Any], out: Path) -> list[Any]:
    """The units of ``units`` whose record in ``out`` is a failure (this run's or an earlier one's)."""
    from structure_bench.results import RECORDS_DIR, read_record

    failed = []
    for unit in units:
        path = out / RECORDS_DIR / unit.record_name
        if path.exists() and read_record(path)["status"] == "failed":
            failed.append(unit)
    return failed


def cmd_report(args: argparse.Namespace) -> None:
    from structure_bench.report import write_report

    print(f"report: {write_report(args.dir, args.out, jobs=args.jobs)}")


def cmd_export(args: argparse.Namespace) -> None:
    from structure_bench.export import MANIFEST, export_task

    manifest = export_task(args.task, args.out, args.site)
    sizes = ", ".join(f"{split} {n}" for split, n in manifest["splits"].items())
    print(f"exported {manifest['task']}/{manifest['site']} ({sizes} samples x d {manifest['d']}) to {args.out} "
          f"(identity {manifest['task_identity'][:12]}; see {args.out}/{MANIFEST})")


def cmd_score(args: argparse.Namespace) -> int:
    from structure_bench.external import load_codes, load_dictionary
    from structure_bench.planning import plan
    from structure_bench.registry import load_task
    from structure_bench.runner import run
    from structure_bench.task import Cell

    task = load_task(args.task)
    site = args.site or task.metadata.default_site
    if site not in task.sites:
        raise StructureBenchError(f"task {task.id} has no site {site!r} (its sites: {', '.join(task.sites)})")
    X_test = task.activations(site, "test")
    if bool(args.codes) != bool(args.decoder):
        raise StructureBenchError("--codes and --decoder go together (codes of the test split and the decoder they reconstruct through)")
    if args.codes:
        given = load_codes(args.codes, args.decoder)
        given.check(*X_test.shape)
        method, k, what = "external-codes", None, "codes and decoder"
        params = {"codes": given.source["path"], "decoder": given.source["decoder"]["path"],
                  "sha256": given.source["sha256"], "decoder_sha256": given.source["decoder"]["sha256"]}
        # Without --l0 the cell's L0 target is the codes' own mean L0, rounded.
        default_l0 = max(1, round(float((given.codes != 0).sum(axis=1).mean())))
    else:
        given = load_dictionary(args.dictionary, args.activation, args.k)
        given.check(X_test.shape[1])
        declared = given.source.get("task_identity")
        if declared and declared != task.identity:
            print(f"structure-bench: warning: {args.dictionary} declares task identity {declared[:12]}, but {task.id} is "
                  f"{task.identity[:12]} now: it was trained on other data; scoring it anyway", file=sys.stderr)
        method, k, what = "external", given.k, f"{given.source['format']} dictionary ({given.activation})"
        params = {"dictionary": given.source["path"], "activation": given.activation, "k": given.k,
                  "sha256": given.source["sha256"]}
        # Without --l0: a top-k dictionary's k, else the L0 target of the grid cell closest in width.
        default_l0 = k or min(task.metadata.grid, key=lambda cell: abs(cell.n_latents - given.n_latents)).l0_target
    units = plan([task.id], [method], [0], site=site, params={method: params},
                 cells=[Cell(given.n_latents, int(args.l0 or default_l0))])
    run(units, args.out, progress=False)
    path = Path(args.out) / "records" / units[0].record_name
    record = json.loads(path.read_text())
    if record["status"] != "ok":
        raise StructureBenchError(record["error"])
    metrics = record["metrics"]
    classes = ", ".join(f"{k.split('[')[1][:-1]} {v:.2f}" for k, v in metrics.items()
                        if k.startswith("latents/variance_share[") and v)
    print(f"{task.id}/{site} {what}, {given.n_latents} latents: {record['main_score']} "
          f"{metrics[record['main_score']]:.4f}, fvu {metrics['fvu']:.4f}, l0 {metrics['l0']:.2f}, dead "
          f"{metrics['dead_fraction']:.3f}; code variance by latent class: {classes}\nrecord: {path}")
    return 0


def cmd_results(args: argparse.Namespace) -> None:
    report_tables(Path(args.dir))


def cmd_submit(args: argparse.Namespace) -> None:
    from structure_bench.leaderboard import read_submission, submit

    path = submit(args.results, args.method, args.tasks, args.board, args.name, args.replace)
    if read_submission(path).get("unverified"):
        print(f"submitted {args.results} as {path}, an unverified entry (trained elsewhere: not re-run); "
              "`structure-bench leaderboard` shows it apart")
        return
    vouch = " --method-file FILE.py" if ":" in args.method else ""  # a module that is not installed
    print(f"submitted {args.results} as {path}; check it with `structure-bench verify {path.stem}{vouch}`")


def cmd_verify(args: argparse.Namespace) -> None:
    from structure_bench.leaderboard import verify

    table = verify(args.name, args.board, args.tasks, args.out, jobs=args.jobs, progress=not args.quiet, method_files=args.method_file)
    _print_frame(table)
    print(f"\n{args.name}: every task reproduces on hidden instances")


def cmd_leaderboard(args: argparse.Namespace) -> None:
    from structure_bench.leaderboard import check_board, write_board
    from structure_bench.leaderboard.board import malformed_files

    if args.check:
        problems = check_board(args.board)
        if problems:
            raise StructureBenchError("the committed leaderboard is not what its files give: " + "; ".join(problems))
        print(f"{args.board}: the pages are what its submissions and verifications give")
        return
    board = write_board(args.board)
    for line in malformed_files(board, args.board):
        print(f"structure-bench: warning: skipped {line}", file=sys.stderr)
    counts = pd.Series([e.status for e in board.entries.values()]).value_counts()
    summary = ", ".join(f"{n} {status}" for status, n in counts.items())
    print(f"{len(board.entries)} submissions ({summary}) on {len(board.tasks)} tasks -> {args.board}/README.md, {args.board}/index.html")


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line usage error (like every other error of the command line)."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.partition(" ")[2]  # "structure-bench run" -> "run"
        self.exit(2, f"structure-bench: error: {command + ': ' if command else ''}{message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="structure-bench",
        description="Train dictionary learners on networks whose structure is known and score what they find.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("tasks", help="list tasks: id, sites, n, d, structures").set_defaults(func=cmd_tasks)

    show = sub.add_parser("show", help="print a task's card and its validation figures, recomputed")
    show.add_argument("task", help="task id, e.g. pizza-v1")
    show.set_defaults(func=cmd_show)

    identity = sub.add_parser(
        "identity", help="print each task's portable identity and whether it matches its pin (fails if one differs)"
    )
    identity.add_argument("tasks", nargs="*", metavar="TASK", help="task ids (default: every registered task)")
    identity.add_argument(
        "--pin", action="store_true",
        help="(re)write the pins (<task folder>/identity.json) from this machine's statistics, where the folder is writable",
    )
    identity.set_defaults(func=cmd_identity)

    sub.add_parser("methods", help="list registered methods and their parameters").set_defaults(func=cmd_methods)
    sub.add_parser("schema", help="print the JSON Schema of result records").set_defaults(func=cmd_schema)

    run = sub.add_parser("run", help="fit methods on task grids, score them, write results")
    run.add_argument("--tasks", nargs="+", metavar="ID", help="task ids (default: the default suite, every registered task no newer version supersedes)")
    run.add_argument(
        "--methods", nargs="+", metavar="SPEC",
        help="registered names or module:Class specs (default: the built-in baselines)",
    )
    run.add_argument("--seeds", nargs="+", type=_count(0), default=[0], metavar="N", help="seeds (default: 0)")
    run.add_argument(
        "--cells", nargs="+", type=_cell, metavar="NxK",
        help="cells to run instead of each task's grid: N latents at L0 target K, e.g. 256x8 1024x8",
    )
    run.add_argument("--widths", nargs="+", type=_count(1), metavar="N", help="with --l0: run every width at every L0")
    run.add_argument("--l0", nargs="+", type=_count(1), metavar="K", help="L0 targets for --widths")
    run.add_argument("--site", help="activation site (default: each task's default site)")
    run.add_argument("--out", required=True, type=Path, help="results directory (a re-run resumes it)")
    run.add_argument("--param", action="append", default=[], metavar="METHOD.KEY=VALUE", help="method hyperparameter")
    run.add_argument(
        "--jobs", type=_count(1), default=1,
        help="units at once: local worker processes, or a local Ray instance of JOBS x THREADS CPUs (default: 1)",
    )
    run.add_argument(
        "--threads", type=_count(1), default=1,
        help="torch/BLAS threads per unit, the same under every executor so results are identical (default: 1)",
    )
    run.add_argument(
        "--executor", choices=["local", "ray"], default="local",
        help="local: this machine; ray: one Ray task per unit (pip install 'structure-bench[ray]')",
    )
    run.add_argument(
        "--address",
        help="Ray cluster address, e.g. auto or ray://HOST:10001 (default: start a local Ray instance); "
        "workers must import structure_bench and the named task and method modules; "
        "results come back to this process, so OUT need not be shared",
    )
    run.add_argument("--retry-failed", action="store_true", help="re-run cells whose record is a failure")
    run.add_argument(
        "--allow-failures", action="store_true",
        help="exit 0 even when fits failed (default: exit status 1, after the failure table)",
    )
    run.add_argument(
        "--no-calibration", action="store_true",
        help="do not add the calibration methods (oracle, random) that normalised scores need",
    )
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument(
        "--plots", action="store_true",
        help="save each config's codes (first seed) and write OUT/report.html with figures (needs matplotlib)",
    )
    run.set_defaults(func=cmd_run)

    export = sub.add_parser("export", help="write a task's activations, inputs and manifest for a trainer elsewhere")
    export.add_argument("task", help="task id, e.g. pizza-zhong2023-v1")
    export.add_argument("--site", help="activation site (default: the task's default site)")
    export.add_argument("--out", type=Path, required=True, help="folder to write (created)")
    export.set_defaults(func=cmd_export)

    score = sub.add_parser("score", help="score a dictionary trained elsewhere (safetensors, SAELens dir, dictionary_learning ae.pt)")
    score.add_argument("task", help="task id the dictionary was trained on")
    given = score.add_mutually_exclusive_group(required=True)
    given.add_argument("--dictionary", help="a .safetensors file, a SAELens SAE directory or an ae.pt")
    given.add_argument("--codes", help="codes of the test split [n_test, L] (.npy or safetensors 'codes'), for a method with no encoder")
    score.add_argument("--decoder", help="with --codes: a safetensors file with W_dec [L, d] and b_dec [d]")
    score.add_argument("--activation", choices=["relu", "topk", "jumprelu"], help="for a plain safetensors file")
    score.add_argument("--k", type=int, help="k of a topk dictionary (plain safetensors file)")
    score.add_argument("--l0", type=int, help="L0 target of the record's cell (default: k; the codes' mean L0; else the grid's closest cell)")
    score.add_argument("--site", help="activation site (default: the task's default site)")
    score.add_argument("--out", type=Path, required=True, help="results directory to write the record into")
    score.set_defaults(func=cmd_score)

    results = sub.add_parser("results", help="print the summary and profile tables of a results directory")
    results.add_argument("dir", type=Path)
    results.set_defaults(func=cmd_results)

    board_help = "leaderboard folder (default: ./leaderboard)"
    submit = sub.add_parser("submit", help="check a finished run and add it to the leaderboard's submissions")
    submit.add_argument("results", type=Path, help="results directory of `structure-bench run`")
    submit.add_argument("--method", required=True, metavar="SPEC", help="registered name or module:Class, as run")
    submit.add_argument(
        "--tasks", nargs="+", metavar="ID",
        help="the suite (default: the default suite; for `score` records, the tasks they were scored on)",
    )
    submit.add_argument("--name", help="submission name (default: from the method spec)")
    submit.add_argument("--board", type=Path, default=Path("leaderboard"), help=board_help)
    submit.add_argument("--replace", action="store_true", help="overwrite a submission of the same name")
    submit.set_defaults(func=cmd_submit)

    verify = sub.add_parser("verify", help="re-run a submission on hidden instances; fail if its scores do not reproduce")
    verify.add_argument("name", help="submission name (file name under submissions/ without .json)")
    verify.add_argument("--tasks", nargs="+", metavar="ID", help="ids to load its tasks by (default: its own)")
    verify.add_argument("--out", type=Path, help="re-run results directory (default: results/verify/NAME)")
    verify.add_argument("--board", type=Path, default=Path("leaderboard"), help=board_help)
    verify.add_argument("--jobs", type=_count(1), default=1, help="parallel worker processes (default: 1)")
    verify.add_argument(
        "--method-file", action="append", default=[], type=Path, metavar="PATH",
        help="the source file of a method that is not in an installed package (you vouch for it)",
    )
    verify.add_argument("--quiet", action="store_true", help="no progress bar")
    verify.set_defaults(func=cmd_verify)

    leaderboard = sub.add_parser("leaderboard", help="regenerate README.md and index.html from the submissions")
    leaderboard.add_argument("--board", type=Path, default=Path("leaderboard"), help=board_help)
    leaderboard.add_argument("--check", action="store_true", help="write nothing; fail if the pages differ from what the files give")
    leaderboard.set_defaults(func=cmd_leaderboard)

    report = sub.add_parser("report", help="write a self-contained HTML report with figures of a results directory")
    report.add_argument("dir", type=Path)
    report.add_argument("--out", type=Path, help="HTML file to write (default: DIR/report.html)")
    report.add_argument("--jobs", type=_count(1), default=1, help="worker processes drawing figures (default: 1)")
    report.set_defaults(func=cmd_report)
    return parser


def _one_line_warning(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
    print(f"structure-bench: warning: {message}", file=sys.stderr)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    warnings.showwarning = _one_line_warning
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse has printed its usage line (or --help): return its status
        return int(exc.code or 0)
    # SIGTERM (kill, a scheduler's time limit) unwinds like Ctrl-C, so worker processes are stopped.
    on_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if on_main_thread else None
    # `--methods mymodule:Class` finds mymodule in the current folder, as `python -m` would; appended,
    # so a file here cannot shadow an installed module.
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    try:
        status = args.func(args)
    except StructureBenchError as exc:
        print(f"structure-bench: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the file system's refusal: a full disk, a folder that cannot be written
        where = f": {exc.filename}" if exc.filename else ""
        print(f"structure-bench: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("structure-bench: interrupted; finished results are kept", file=sys.stderr)
        return 130
    finally:
        if on_main_thread:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
