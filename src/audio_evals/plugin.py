"""The pytest plugin: options, collection, items, fixtures and terminal output around the run engine.

Each hook hands off to `EvalSession`, which holds the engine (`engine.py`: cassettes, the local
server, forked replay) and finishes through the library (`finish.py`: report, gates, baseline).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from . import forked, netguard
from .cassettes import RecordMode
from .datasets import DatasetError
from .engine import (
    BatchFailed,
    BatchSkipped,
    Engine,
    RunOptions,
    UsageError,
    record_command,
)
from .extractors import VariantConfig
from .gates import NOT_EVALUATED, GateConfigError, GateResult, parse_rules
from .project import Project, ProjectError
from .redaction import PytestRedactor
from .results import CaseResult, ErrorKind, EvalRef
from .run_record import resume_command
from .suites import SUITE_SUFFIX, Suite, SuiteError, load_suite

RESULT_PROPERTY = "audio_evals_result"
REF_KEY = pytest.StashKey[EvalRef]()
STATE_KEY = pytest.StashKey["EvalSession"]()
GATE_NODE_PREFIX = "audio-evals::gates::"


class HookSpecs:
    """Hooks a project's conftest.py may implement."""

    @pytest.hookspec(firstresult=True)
    def pytest_audio_evals_client(self, variant: VariantConfig) -> Any:
        """Build the client a custom extractor gets as `variant.client` (once per batch)."""


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """Register the audio-evals hooks."""
    pluginmanager.add_hookspecs(HookSpecs)


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    """Register the audio-evals command-line options."""
    # pytest-recording owns --record-mode and --allowed-hosts of the same meaning; one registration serves both.
    if not pluginmanager.has_plugin("recording"):
        pluginmanager.set_blocked("recording")
    group = parser.getgroup("audio-evals", "audio extraction evals")
    with contextlib.suppress(ValueError):
        group.addoption(
            "--record-mode",
            action="store",
            default=None,
            choices=[m.value for m in RecordMode],
            help="vcrpy record mode for eval cassettes (default: none = replay only, offline)",
        )
    with contextlib.suppress(ValueError):
        group.addoption(
            "--allowed-hosts",
            action="store",
            default=None,
            help="regexes, separated by commas, of hosts a replay may still connect to "
            "(replay blocks every other connection)",
        )
    group.addoption(
        "--variant",
        action="append",
        default=[],
        metavar="NAME",
        help="run only this variant (repeatable)",
    )
    group.addoption(
        "--cassette-dir", default=None, help="cassette library (default: <rootdir>/cassettes)"
    )
    group.addoption(
        "--reports-dir", default=None, help="where reports are written (default: <rootdir>/reports)"
    )
    group.addoption(
        "--eval-concurrency",
        type=int,
        default=8,
        metavar="N",
        help="concurrent API calls per suite/variant batch (default 8)",
    )
    group.addoption(
        "--eval-rpm",
        type=float,
        default=0,
        metavar="N",
        help="overall rate limit, calls per minute",
    )
    group.addoption(
        "--eval-processes",
        type=_processes,
        default=None,
        metavar="N|auto",
        help="processes that replay a large batch from its cassette (default auto: one per CPU, "
        f"for batches of {2 * forked.MIN_SHARE}+ cases, Linux; 1 = this process only)",
    )
    group.addoption("--repeats", type=int, default=None, metavar="K", help="run each case K times")
    group.addoption(
        "--update-baseline",
        action="store_true",
        default=False,
        help="update reports/baseline.json with this run's suites/variants (kept: the others)",
    )
    group.addoption(
        "--force-baseline",
        action="store_true",
        default=False,
        help="with --update-baseline: write it even when gates failed",
    )
    group.addoption(
        "--shard",
        type=_shard,
        default=None,
        metavar="I/N",
        help="run the I-th of N shares of the cases (stable by suite and case id) and save a partial "
        "run to <reports>/shards/I-of-N/ for `audio-evals merge`; no gate is judged",
    )
    group.addoption(
        "--prune-cassettes",
        action="store_true",
        default=False,
        help="remove unused interactions and cassettes of suites/variants that no longer exist",
    )


def _processes(value: str) -> int | None:
    """Parse --eval-processes: a positive count or `auto` (None)."""
    if value.strip().lower() == "auto":
        return None
    try:
        count = int(value)
    except ValueError:
        count = 0
    if count < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number or 'auto', got {value!r}")
    if count > 1 and not forked.fork_supported():
        raise argparse.ArgumentTypeError(
            f"{count} replay processes need fork() on Linux; this is {sys.platform}"
        )
    return count


def _shard(value: str) -> tuple[int, int]:
    """Parse --shard I/N."""
    from .shards import ShardError, parse_shard

    try:
        return parse_shard(value)
    except ShardError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def pytest_configure(config: pytest.Config) -> None:
    """Check the options and the project's gate table, and register the session state."""
    config.addinivalue_line(
        "markers",
        "audio_eval(suite): parametrize a test over a suite's cases x variants (fixture audio_eval_case)",
    )
    record_mode = RecordMode(config.getoption("record_mode", None) or "none")
    numprocesses = config.getoption("numprocesses", None)
    worker = hasattr(config, "workerinput")
    if record_mode.records and (numprocesses or worker):
        raise pytest.UsageError(
            f"--record-mode={record_mode} cannot record under pytest-xdist (-n): concurrent workers would "
            "race on the same cassettes. Record without -n (calls already run concurrently, see "
            "--eval-concurrency); replay works with -n."
        )
    if config.getoption("prune_cassettes") and numprocesses:
        raise pytest.UsageError(
            "--prune-cassettes needs the whole run in one process: run it without -n"
        )
    shard = config.getoption("shard")
    for option in ("prune_cassettes", "update_baseline"):
        if shard and config.getoption(option):
            raise pytest.UsageError(
                f"--{option.replace('_', '-')} needs the whole run: use it after `audio-evals merge`, "
                "not with --shard"
            )
    try:
        project = Project.at(
            config.rootpath,
            cassette_dir=config.getoption("cassette_dir"),
            reports_dir=config.getoption("reports_dir"),
        )
        gates = project.settings.get("gates")
        if gates:  # a broken gate table is a usage error now, not after every case has run
            parse_rules(gates, f"{project.root / 'pyproject.toml'} [tool.audio-evals.gates]")
    except ProjectError as exc:
        raise pytest.UsageError(f"audio-evals: {exc}") from None
    except GateConfigError as exc:
        raise pytest.UsageError(f"audio-evals gates: {exc}") from None
    text = config.getoption("allowed_hosts", None) or ""
    hosts = tuple(h.strip() for h in text.split(",") if h.strip())
    try:
        netguard.allowed_patterns(hosts)
    except ValueError as exc:
        raise pytest.UsageError(f"--allowed-hosts: {exc}") from None
    options = RunOptions(
        record_mode=record_mode,
        concurrency=config.getoption("eval_concurrency"),
        rpm=config.getoption("eval_rpm"),
        processes=config.getoption("eval_processes"),
        repeats=config.getoption("repeats"),
        prune_cassettes=config.getoption("prune_cassettes"),
        allowed_hosts=hosts,
        client_factory=_client_factory(config),
        worker=worker,
        shard=shard,
        parent_share=forked.PYTEST_PARENT_SHARE,
    )
    say = functools.partial(_say, config)
    detail = say if config.option.verbose > 0 else (lambda line: None)
    state = EvalSession(config, Engine(project, options, say=say, detail=detail))
    config.stash[STATE_KEY] = state
    config.pluginmanager.register(state, "audio-evals-session")
    config.pluginmanager.register(PytestRedactor(state.engine.secrets), "audio-evals-redaction")
    if worker or numprocesses:
        config.pluginmanager.register(XdistTransport(state), "audio-evals-xdist")


def _client_factory(config: pytest.Config) -> Any:
    """The conftest's `pytest_audio_evals_client`, when a project implements it."""
    hook = config.hook.pytest_audio_evals_client
    if not hook.get_hookimpls():
        return None
    return lambda variant: hook(variant=variant)


def _say(config: pytest.Config, line: str) -> None:
    """Write a line to the terminal, also while a test's output is captured."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capman = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None:
        return
    with capman.global_and_fixture_disabled() if capman else contextlib.nullcontext():
        reporter.ensure_newline()
        reporter.write_line(line)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """Collect `*.eval.toml` suite files."""
    if file_path.name.endswith(SUITE_SUFFIX):
        return SuiteFile.from_parent(parent, path=file_path)
    return None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize `audio_eval_case` over a suite's cases x variants for `@pytest.mark.audio_eval(suite)`."""
    marker = metafunc.definition.get_closest_marker("audio_eval")
    if marker is None or "audio_eval_case" not in metafunc.fixturenames:
        return
    suite = marker.args[0] if marker.args else marker.kwargs.get("suite")
    if not isinstance(suite, Suite):
        raise pytest.UsageError(
            f"{metafunc.definition.nodeid}: @pytest.mark.audio_eval needs a Suite"
        )
    engine = metafunc.config.stash[STATE_KEY].engine
    try:
        engine.add_suite(suite)
    except UsageError as exc:
        raise pytest.UsageError(f"audio-evals: {exc}") from None
    refs = list(engine.refs(suite))
    metafunc.parametrize("audio_eval_case", refs, ids=[engine.item_id(r) for r in refs])


@pytest.fixture
def audio_eval_result(request: pytest.FixtureRequest, audio_eval_case: EvalRef) -> CaseResult:
    """The scored extraction for this test's case and variant (run or replayed on first use)."""
    return request.config.stash[STATE_KEY].result_for(request.node, audio_eval_case)


@pytest.fixture
def audio_eval_suite(request: pytest.FixtureRequest, audio_eval_case: EvalRef) -> Suite:
    """The suite this test's case belongs to."""
    return request.config.stash[STATE_KEY].engine.suites[audio_eval_case.suite]


class EvalFailure(Exception):
    """A case that failed: its extraction errored, or a must-pass case got a field wrong."""


class SuiteFile(pytest.File):
    """A `.eval.toml` suite: one item per (variant, case, repeat); a broken suite is one failed item."""

    def collect(self) -> Iterator[pytest.Item]:
        """Load and validate the suite, then yield its items variant by variant."""
        engine = self.config.stash[STATE_KEY].engine
        try:
            suite = load_suite(self.path, root=self.config.rootpath)
            if suite.gates:
                parse_rules(suite.gates, f"{self.path} [gates]", suite=suite.name)
            engine.add_suite(suite)
        except (SuiteError, DatasetError, GateConfigError, UsageError) as exc:
            yield BrokenSuite.from_parent(self, name=self.path.name, message=f"audio-evals: {exc}")
            return
        for ref in engine.refs(suite):
            item = EvalItem.from_parent(self, name=f"{suite.name}[{engine.item_id(ref)}]")
            item.stash[REF_KEY] = ref
            yield item


class BrokenSuite(pytest.Item):
    """A suite file that cannot be loaded: it fails on its own, the other suites still run."""

    def __init__(self, *, message: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.message = message

    def runtest(self) -> None:
        """Fail with the suite's error."""
        raise EvalFailure(self.message)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        """The error, without a traceback."""
        return str(excinfo.value)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        """Where the item comes from."""
        return self.path, None, self.name


class EvalItem(pytest.Item):
    """One case of a suite under one variant."""

    def runtest(self) -> None:
        """Run (or replay) the extraction and fail only when it errored or a must-pass field is wrong."""
        self.config.stash[STATE_KEY].result_for(self, self.stash[REF_KEY])
        self.config.stash[STATE_KEY].check(self)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        """An eval failure as its message; any other error as a message too (no frames, no secrets)."""
        if isinstance(excinfo.value, EvalFailure):
            return str(excinfo.value)
        return f"audio-evals internal error: {type(excinfo.value).__name__}: {excinfo.value}"

    def reportinfo(self) -> tuple[Path, int | None, str]:
        """Where the item comes from."""
        return self.path, None, self.name


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """For Python-API tests: fail before the test body when the extraction errored."""
    state = item.config.stash.get(STATE_KEY, None)
    if state is not None and not isinstance(item, EvalItem) and state.item_results.get(item.nodeid):
        state.check(item)
    return (yield)


class EvalSession:
    """The plugin's session object: hands every hook to the engine and the library."""

    def __init__(self, config: pytest.Config, engine: Engine) -> None:
        self.config = config
        self.engine = engine
        self.item_results: dict[str, CaseResult] = {}
        self.outcome: Any = None
        self.usage_error = False
        self.deselected: list[EvalRef] = []
        self.other_shards: set[str] = set()
        self.shard_lines: list[str] = []
        self.failed_batches: dict[tuple[str, str], str] = {}

    def ref_of(self, item: pytest.Item) -> EvalRef | None:
        """The unit an item runs (None for other tests)."""
        ref = item.stash.get(REF_KEY, None)
        if ref is None:
            callspec = getattr(item, "callspec", None)
            value = callspec.params.get("audio_eval_case") if callspec is not None else None
            ref = value if isinstance(value, EvalRef) else None
        return ref

    def result_for(self, item: pytest.Item, ref: EvalRef) -> CaseResult:
        """The unit's result from the engine (a skipped or failed batch skips or fails the item)."""
        try:
            result = self.engine.result(ref)
        except BatchSkipped as exc:
            pytest.skip(str(exc))
        except BatchFailed as exc:
            first = self.failed_batches.setdefault(ref.batch, item.nodeid)
            if first == item.nodeid:
                raise EvalFailure(str(exc)) from None
            raise EvalFailure(  # said once, at the batch's first item; every item still fails
                f"batch {ref.suite}/{ref.variant} failed; the reason is given once, at {first}"
            ) from None
        self.item_results[item.nodeid] = result
        if self.engine.options.worker:  # the controller reads it from the report
            item.user_properties.append((RESULT_PROPERTY, result.to_json()))
        return result

    def check(self, item: pytest.Item) -> None:
        """Raise EvalFailure when the item's extraction errored or its must-pass case got a field wrong."""
        result = self.item_results.get(item.nodeid)
        if result is None:
            return
        if result.error_kind is ErrorKind.CASSETTE_MISS:
            info = self.engine.batches[(result.suite, result.variant)]
            variant = self.engine.suites[result.suite].variant(result.variant)
            raise EvalFailure(
                f"cassette miss in {info.cassette} (suite {result.suite}, variant {result.variant}, "
                f"case {result.case_id}): {result.error}. Re-record it with: "
                f"{record_command(variant, result.case_id)}"
            )
        if result.error_kind:
            raise EvalFailure(f"extraction failed [{result.error_kind}]: {result.error}")
        if result.must_pass and result.wrong_fields:
            details = "; ".join(
                f"{f['field']}: expected {f['expected']!r}, got {f['predicted']!r}"
                for f in result.fields
                if not f["correct"]
            )
            raise EvalFailure(
                f"must_pass case {result.case_id} got {len(result.wrong_fields)} field(s) wrong: {details}"
            )

    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        """Apply --shard, and --variant selection (a name that matches nothing is a usage error)."""
        shard = self.engine.options.shard
        if shard is not None:
            from .engine import in_shard

            others = [
                i for i in items if (ref := self.ref_of(i)) is not None and not in_shard(ref, shard)
            ]
            if others:
                self.other_shards.update(i.nodeid for i in others)
                config.hook.pytest_deselected(items=others)
                items[:] = [i for i in items if i.nodeid not in self.other_shards]
        wanted = config.getoption("variant") or []
        if not wanted:
            return
        try:
            self.engine.check_variants(wanted)
        except UsageError as exc:
            self.usage_error = True
            raise pytest.UsageError(str(exc)) from None
        keep, drop = [], []
        for item in items:
            ref = self.ref_of(item)
            (drop if ref is not None and ref.variant not in wanted else keep).append(item)
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = keep

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        """Note units deselected on purpose (-k, -m, --variant; not another shard's)."""
        mine = [i for i in items if i.nodeid not in self.other_shards]
        self.deselected += [r for r in map(self.ref_of, mine) if r is not None]

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Tell the engine which units run (each batch then runs in one go)."""
        self.engine.select(
            [r for r in map(self.ref_of, session.items) if r is not None], self.deselected
        )

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Forget the results of finished items."""
        if report.when == "teardown":
            self.item_results.pop(report.nodeid, None)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        """Close the engine; on the controller, write the report, judge the gates, report them."""
        interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
        self.engine.interrupted = self.engine.interrupted or interrupted
        stopped = session.shouldstop or session.shouldfail  # -x, --maxfail
        self.engine.stopped_early = str(stopped) if stopped else None
        run = self.engine.close()
        if self.engine.options.worker or self.usage_error or self.config.option.collectonly:
            return
        run.resume = resume_command(self.config.invocation_params.args, run.record_mode)
        if not run.batches:
            return
        if run.shard is not None:
            from .shards import shard_folder, shard_lines, write_shard

            folder = write_shard(run, shard_folder(self.engine.project.reports_dir, run.shard))
            self.shard_lines = list(shard_lines(run, folder))
            return
        from .finish import finish_run

        try:
            self.outcome = finish_run(
                run,
                update_baseline=self.config.getoption("update_baseline"),
                force_baseline=self.config.getoption("force_baseline"),
                prune=self.config.getoption("prune_cassettes"),
                all_suites_collected=_all_suites_collected(self.config.rootpath, set(run.suites)),
            )
        except GateConfigError as exc:
            raise pytest.UsageError(f"audio-evals: {exc}") from None
        gates = self.outcome.gates
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if gates and reporter is not None:
            reporter.ensure_newline()
            reporter.write_sep("-", "audio-evals gates")
        for gate in gates:
            self.config.hook.pytest_runtest_logreport(report=_gate_report(gate))
        if self.outcome.failed and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(
        self, terminalreporter: Any, exitstatus: int, config: pytest.Config
    ) -> None:
        """Print the per-field tables, cassette hygiene and the gate verdicts."""
        for line in self.shard_lines:
            terminalreporter.write_line(line)
        if self.outcome is None:
            return
        from .terminal import LineKind

        for line in self.outcome.lines(all_gates=config.option.verbose > 0):
            if line.kind is LineKind.SEP:
                terminalreporter.write_sep("=", line.text)
            else:
                terminalreporter.write_line(line.text)


class XdistTransport:
    """Results and batch facts travel from xdist workers to the controller."""

    def __init__(self, state: EvalSession) -> None:
        self.state = state

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """On the controller, take the results a worker attached to its reports."""
        if self.state.engine.options.worker or report.when != "call":
            return
        for name, value in report.user_properties:
            if name == RESULT_PROPERTY:
                self.state.engine.add_result(CaseResult.from_json(value))

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """Merge what a worker knew of batches and suites."""
        payload = (getattr(node, "workeroutput", {}) or {}).get("audio_evals")
        if payload:
            self.state.engine.merge_worker(json.loads(payload))

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        """On a worker, send the batches and suites to the controller."""
        if self.state.engine.options.worker:
            self.state.config.workeroutput["audio_evals"] = json.dumps(  # type: ignore[attr-defined]
                self.state.engine.worker_payload()
            )


def _gate_report(result: GateResult) -> pytest.TestReport:
    outcome = {"passed": "passed", "failed": "failed", NOT_EVALUATED: "skipped"}[result.status]
    longrepr: Any = None
    if outcome == "failed":
        longrepr = f"gate failed: {result.name}\n{result.detail}"
    elif outcome == "skipped":
        longrepr = ("audio-evals", 0, f"not evaluated: {result.detail}")
    return pytest.TestReport(
        nodeid=GATE_NODE_PREFIX + result.name,
        location=("audio-evals", None, f"gate {result.name}"),
        keywords={},
        outcome=outcome,
        longrepr=longrepr,
        when="call",
        user_properties=[("detail", result.detail)],
    )


def _all_suites_collected(root: Path, collected: set[str]) -> bool:
    evals = root / "evals"
    names = (
        {p.name[: -len(SUITE_SUFFIX)] for p in evals.rglob(f"*{SUITE_SUFFIX}")}
        if evals.is_dir()
        else set()
    )
    return names <= collected
