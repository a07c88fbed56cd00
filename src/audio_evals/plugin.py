"""The pytest plugin: suites as items, cassettes per suite/variant, results, reports and gates."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import shlex
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from . import cassettes as cas
from . import forked
from .datasets import DatasetError
from .field_types import categorical_fields
from .runner import CaseResult, EvalRef, run_batch
from .suites import SUITE_SUFFIX, Suite, SuiteError, Variant, load_suite

RESULT_PROPERTY = "audio_evals_result"
SKIP_PROPERTY = "audio_evals_skip"
REF_KEY = pytest.StashKey[EvalRef]()
STATE_KEY = pytest.StashKey["EvalSession"]()
REPLAY_BASE_URL = "http://localhost/v1"
REPLAY_API_KEY = "sk-replay-no-key-needed"


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    """Register the audio-evals command-line options."""
    # pytest-recording owns a --record-mode of the same meaning; one registration serves both.
    if not pluginmanager.has_plugin("recording"):
        pluginmanager.set_blocked("recording")
    group = parser.getgroup("audio-evals", "audio extraction evals")
    with contextlib.suppress(ValueError):
        group.addoption(
            "--record-mode",
            action="store",
            default=None,
            choices=cas.RECORD_MODES,
            help="vcrpy record mode for eval cassettes (default: none = replay only, offline)",
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
        help="write reports/baseline.json from this run's results",
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


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker and the session state."""
    config.addinivalue_line(
        "markers",
        "audio_eval(suite): parametrize a test over a suite's cases x variants (fixture audio_eval_case)",
    )
    record_mode = config.getoption("record_mode", None) or "none"
    numprocesses = config.getoption("numprocesses", None)
    if record_mode != "none" and (numprocesses or hasattr(config, "workerinput")):
        raise pytest.UsageError(
            f"--record-mode={record_mode} cannot record under pytest-xdist (-n): concurrent workers would "
            "race on the same cassettes. Record without -n (calls already run concurrently, see "
            "--eval-concurrency); replay works with -n."
        )
    if config.getoption("prune_cassettes") and numprocesses:
        raise pytest.UsageError(
            "--prune-cassettes needs the whole run in one process: run it without -n"
        )
    from .gates import GateConfigError, parse_rules, project_settings

    try:  # a broken gate table is a usage error now, not after every case has run
        gates = project_settings(config.rootpath).get("gates")
        if gates:
            parse_rules(gates, f"{config.rootpath / 'pyproject.toml'} [tool.audio-evals.gates]")
    except GateConfigError as exc:
        raise pytest.UsageError(f"audio-evals gates: {exc}") from None
    state = EvalSession(config, record_mode)
    config.stash[STATE_KEY] = state
    config.pluginmanager.register(state, "audio-evals-session")


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
    state = metafunc.config.stash[STATE_KEY]
    state.register_suite(suite)
    refs = list(state.refs_for(suite))
    metafunc.parametrize("audio_eval_case", refs, ids=[state.item_id(r) for r in refs])


@pytest.fixture
def audio_eval_result(request: pytest.FixtureRequest, audio_eval_case: EvalRef) -> CaseResult:
    """The scored extraction for this test's case and variant (run or replayed on first use)."""
    state = request.config.stash[STATE_KEY]
    return state.run_item(request.node, audio_eval_case)


@pytest.fixture
def audio_eval_suite(request: pytest.FixtureRequest, audio_eval_case: EvalRef) -> Suite:
    """The suite this test's case belongs to."""
    return request.config.stash[STATE_KEY].suites[audio_eval_case.suite]


class EvalFailure(Exception):
    """A case that failed: its extraction errored, or a must-pass case got a field wrong."""


class SuiteFile(pytest.File):
    """A `.eval.toml` suite: one item per (variant, case, repeat)."""

    def collect(self) -> Iterator[pytest.Item]:
        """Load and validate the suite, then yield its items variant by variant."""
        from .gates import GateConfigError, parse_rules

        state = self.config.stash[STATE_KEY]
        try:
            suite = load_suite(self.path, root=self.config.rootpath)
            if suite.gates:
                parse_rules(suite.gates, f"{self.path} [gates]", suite=suite.name)
        except (SuiteError, DatasetError, GateConfigError) as exc:
            raise self.CollectError(f"audio-evals: {exc}") from None
        state.register_suite(suite)
        for ref in state.refs_for(suite):
            item = EvalItem.from_parent(self, name=f"{suite.name}[{state.item_id(ref)}]")
            item.stash[REF_KEY] = ref
            yield item


class EvalItem(pytest.Item):
    """One case of a suite under one variant."""

    def runtest(self) -> None:
        """Run (or replay) the extraction and fail only when it errored or a must-pass field is wrong."""
        self.config.stash[STATE_KEY].run_item(self, self.stash[REF_KEY])
        check_result(self, self.config.stash[STATE_KEY])

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        """Show an eval failure as its message, without a traceback into the harness."""
        if isinstance(excinfo.value, EvalFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        """Where the item comes from."""
        return self.path, None, self.name


def check_result(item: pytest.Item, state: EvalSession) -> None:
    """Raise EvalFailure when the item's extraction errored or its must-pass case got a field wrong."""
    result = state.result_of(item)
    if result is None:
        return
    if result.error_kind:
        if result.error_kind == "cassette_miss":
            raise EvalFailure(state.miss_message(result))
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


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """For Python-API tests: fail before the test body when the extraction errored."""
    state = item.config.stash.get(STATE_KEY, None)
    if state is not None and not isinstance(item, EvalItem) and state.result_of(item) is not None:
        check_result(item, state)
    return (yield)


@dataclass
class BatchInfo:
    """What the session knows of one (suite, variant): items collected, selected, and why not run."""

    suite: str
    variant: str
    model: str
    pipeline: str
    transcription_model: str | None
    collected: int = 0
    selected: int = 0
    deselected_on_purpose: bool = False
    skipped_reason: str | None = None
    cassette: str = ""
    unused_interactions: int | None = None
    unused_unknown: str | None = None


@dataclass(eq=False)  # a pytest plugin object: hashed by identity
class EvalSession:
    """Session state: suites, selection, the open cassette, the local server and the results."""

    config: pytest.Config
    record_mode: str
    suites: dict[str, Suite] = field(default_factory=dict)
    batches: dict[tuple[str, str], BatchInfo] = field(default_factory=dict)
    results: list[CaseResult] = field(default_factory=list)
    skips: list[dict[str, str]] = field(default_factory=list)
    _cache: dict[EvalRef, CaseResult] = field(default_factory=dict)
    _item_results: dict[str, CaseResult] = field(default_factory=dict)
    _pending: dict[tuple[str, str], dict[EvalRef, None]] = field(default_factory=dict)
    _shares: list[forked.ForkedShare] = field(default_factory=list)
    _share_of: dict[EvalRef, forked.ForkedShare] = field(default_factory=dict)
    _fork_failed: bool = False
    _plays_incomplete: bool = False
    _heap_frozen: bool = False
    _open_batch: tuple[str, str] | None = None
    _cassette: cas.IndexedCassette | None = None
    _cassette_stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    _server_stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    _server: Any = None
    _batch_complete: dict[tuple[str, str], bool] = field(default_factory=dict)
    deselected_refs: set[EvalRef] = field(default_factory=set)
    outcome: Any = None

    # ---- paths and options -------------------------------------------------------------
    @property
    def rootpath(self) -> Path:
        """The repo root (pytest's rootdir)."""
        return self.config.rootpath

    @property
    def cassette_dir(self) -> Path:
        """The cassette library."""
        opt = self.config.getoption("cassette_dir")
        return Path(opt) if opt else self.rootpath / "cassettes"

    @property
    def reports_dir(self) -> Path:
        """Where reports go."""
        opt = self.config.getoption("reports_dir")
        return Path(opt) if opt else self.rootpath / "reports"

    @property
    def is_worker(self) -> bool:
        """Whether this process is a pytest-xdist worker."""
        return hasattr(self.config, "workerinput")

    @property
    def is_controller(self) -> bool:
        """Whether this process aggregates results (no xdist, or the xdist controller)."""
        return not self.is_worker

    # ---- collection --------------------------------------------------------------------
    def register_suite(self, suite: Suite) -> None:
        """Remember a suite and its variants (once per name)."""
        known = self.suites.get(suite.name)
        if known is not None and known.source != suite.source:
            raise pytest.UsageError(
                f"two suites are named {suite.name!r}: {known.source} and {suite.source}"
            )
        self.suites[suite.name] = suite
        for v in suite.variants:
            path = cas.cassette_path(self.cassette_dir, suite.name, v.name)
            self.batches.setdefault(
                (suite.name, v.name),
                BatchInfo(
                    suite=suite.name,
                    variant=v.name,
                    model=v.model,
                    pipeline=v.pipeline,
                    transcription_model=v.transcription_model,
                    cassette=_rel(path, self.rootpath),
                ),
            )

    def repeats_of(self, suite: Suite) -> int:
        """How many times each case of a suite runs."""
        return self.config.getoption("repeats") or suite.repeats

    def refs_for(self, suite: Suite) -> Iterator[EvalRef]:
        """The units of a suite, variant-major so that each batch is contiguous."""
        k = self.repeats_of(suite)
        for v in suite.variants:
            for case in suite.dataset:
                for r in range(k):
                    yield EvalRef(suite.name, v.name, case.id, r)

    def item_id(self, ref: EvalRef) -> str:
        """The readable parameter id of a unit, e.g. `local-baseline-person-0007`."""
        suite = self.suites[ref.suite]
        rep = f"-r{ref.repeat + 1}" if self.repeats_of(suite) > 1 else ""
        return f"{ref.variant}-{ref.case_id}{rep}"

    def _ref_of(self, item: pytest.Item) -> EvalRef | None:
        ref = item.stash.get(REF_KEY, None)
        if ref is None:
            callspec = getattr(item, "callspec", None)
            if callspec is not None and isinstance(callspec.params.get("audio_eval_case"), EvalRef):
                ref = callspec.params["audio_eval_case"]
                item.stash[REF_KEY] = ref
        return ref

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        """Apply --variant selection and check that named variants exist."""
        wanted = config.getoption("variant") or []
        known = {v for (_, v) in self.batches}
        unknown = [w for w in wanted if w not in known]
        if unknown and self.batches:
            raise pytest.UsageError(
                f"--variant {unknown[0]!r} matches no variant; known: {', '.join(sorted(known)) or '(none)'}"
            )
        if not wanted:
            return
        keep, drop = [], []
        for item in items:
            ref = self._ref_of(item)
            (drop if ref is not None and ref.variant not in wanted else keep).append(item)
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = keep

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        """Note units deselected on purpose (-k, --variant)."""
        for item in items:
            ref = self._ref_of(item)
            if ref is not None:
                self.deselected_refs.add(ref)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Group the selected units by batch so each batch runs (or replays) in one go."""
        for item in session.items:
            ref = self._ref_of(item)
            if ref is None:
                continue
            self._pending.setdefault(ref.batch, {})[ref] = None
        for key, info in self.batches.items():
            info.selected = len(self._pending.get(key, {}))
            suite = self.suites[key[0]]
            info.collected = len(suite.dataset) * self.repeats_of(suite)
            info.deselected_on_purpose = info.selected == 0 and any(
                r.batch == key for r in self.deselected_refs
            )
            self._batch_complete[key] = info.selected == info.collected

    # ---- running -----------------------------------------------------------------------
    def result_of(self, item: pytest.Item) -> CaseResult | None:
        """The result already computed for an item."""
        return self._item_results.get(item.nodeid)

    def _cassette_file(self, suite: str, variant: str) -> Path:
        return cas.cassette_path(self.cassette_dir, suite, variant)

    def needs_network(self, path: Path) -> bool:
        """Whether calls of this batch may go to the network in this record mode."""
        if self.record_mode == "none":
            return False
        if self.record_mode == "once":
            return not path.exists()
        return True

    def record_command(
        self, variant: Variant, case_id: str | None = None, mode: str = "new_episodes"
    ) -> str:
        """The command that records this variant (or one of its cases)."""
        prefix = "" if variant.is_local or variant.base_url else f"{variant.api_key_env}=... "
        k = f" -k {shlex.quote(case_id)}" if case_id else ""
        return f"{prefix}pytest evals --record-mode={mode} --variant {variant.name}{k}"

    def skip_reason(self, suite: Suite, variant: Variant) -> str | None:
        """Why a batch cannot run in this mode (None when it can)."""
        path = self._cassette_file(suite.name, variant.name)
        rel = _rel(path, self.rootpath)
        if self.record_mode == "none" and not path.exists():
            return (
                f"no cassette {rel} for suite {suite.name}, variant {variant.name}; "
                f"record it with: {self.record_command(variant, mode='once')}"
            )
        if (
            self.needs_network(path)
            and not variant.is_local
            and not os.environ.get(variant.api_key_env)
        ):
            return f"{variant.api_key_env} is not set: cannot record variant {variant.name} ({variant.model})"
        return None

    def run_item(self, item: pytest.Item, ref: EvalRef) -> CaseResult:
        """Get this unit's result, running its whole batch (with concurrency) the first time."""
        if ref not in self._cache and ref in self._share_of:
            self._take_from_share(ref)
        if ref not in self._cache:
            self._run_batch_of(ref)
        result = self._cache.pop(ref)
        self._item_results[item.nodeid] = result
        if self.is_worker:  # the controller reads it from the report
            item.user_properties.append((RESULT_PROPERTY, result.to_json()))
        else:
            self.results.append(result)
        return result

    def _run_batch_of(self, ref: EvalRef) -> None:
        suite = self.suites[ref.suite]
        variant = suite.variant(ref.variant)
        reason = self.skip_reason(suite, variant)
        if reason:
            skip = {"suite": suite.name, "variant": variant.name, "reason": reason}
            if skip not in self.skips:
                self.skips.append(skip)
            pytest.skip(reason)
        if self.is_worker:
            refs = [ref]
        else:
            refs = [
                r
                for r in self._pending.get(ref.batch, {})
                if r not in self._cache and r not in self._share_of
            ]
            if ref not in refs:
                refs.append(ref)
        if self._open_batch != ref.batch:
            self._close()
            if variant.is_local and self.needs_network(
                self._cassette_file(suite.name, variant.name)
            ):
                self._local_server()  # started outside any cassette, so its health checks are not recorded
        if (
            not self._heap_frozen
        ):  # once, before any cassette: a closed cassette must stay collectable
            forked.freeze_heap()
            self._heap_frozen = True
        self._open(ref.batch)
        live = self._cassette is not None and not self._cassette.write_protected
        if variant.is_local:
            base_url = self._local_server().base_url if live else REPLAY_BASE_URL
            api_key = "sk-local"
        else:
            base_url = variant.base_url
            api_key = os.environ.get(variant.api_key_env, "") if live else REPLAY_API_KEY
        run = functools.partial(
            run_batch,
            suite,
            variant,
            base_url=base_url,
            api_key=api_key,
            max_retries=variant.max_retries if live else 0,
            concurrency=self.config.getoption("eval_concurrency"),
            rpm=self.config.getoption("eval_rpm"),
        )
        own = refs
        if not live and not self.is_worker and not self._fork_failed and not run.keywords["rpm"]:
            shares = forked.split_shares(
                refs, forked.processes_for(self.config.getoption("eval_processes"), len(refs))
            )
            own = shares[0]
            forks = sum(self._fork(share, run) for share in shares[1:])
            for child in self._shares:
                child.start()
            if forks and self.config.option.verbose > 0:
                self.say(
                    f"audio-evals: replaying {len(refs)} cases of {suite.name}/{variant.name} "
                    f"in {forks + 1} processes"
                )
        results = asyncio.run(run(own))
        self._cache.update(results)
        self._settle(ref.batch, results)

    def _fork(self, refs: list[EvalRef], run: Callable[..., Any]) -> bool:
        """Replay `refs` in a child process (or here, when fork fails); whether it forked."""
        cassette = self._cassette
        assert cassette is not None

        def work(share: Sequence[EvalRef], emit: forked.Emit) -> dict[int, int]:
            before = dict(cassette.play_counts)
            asyncio.run(run(share, on_result=lambda _ref, result: emit(result)))
            return {
                i: n - before.get(i, 0)
                for i, n in cassette.play_counts.items()
                if n > before.get(i, 0)
            }

        child = forked.fork_share(refs, work)
        if child is None:
            self._fork_failed = True
            self._cache.update(asyncio.run(run(refs)))
            return False
        self._shares.append(child)
        for r in refs:
            self._share_of[r] = child
        return True

    def _take_from_share(self, ref: EvalRef) -> None:
        """Wait for a child's result for `ref`; when the child failed, its missing units are redone here."""
        share = self._share_of.pop(ref)
        result = share.take(ref)
        if result is not None:
            self._cache[ref] = result
            self._settle(ref.batch, {ref: result})
            return
        missing = share.missing()
        for r in share.refs:
            self._share_of.pop(r, None)
        self._fork_failed = self._plays_incomplete = True
        delivered, share.results = share.results, {}
        self._cache.update(delivered)  # what it delivered before failing stands
        self._settle(ref.batch, delivered)
        self.say(
            f"audio-evals: a replay process failed ({share.error}); replaying its "
            f"{len(missing)} remaining case(s) in this process"
        )

    def _settle(self, batch: tuple[str, str], results: Mapping[EvalRef, CaseResult]) -> None:
        """Mark results as computed; once the batch has all of them, free its cassette."""
        pending = self._pending.get(batch)
        if pending is not None:
            for r in results:
                pending.pop(r, None)
        if not self.is_worker and not pending and self._open_batch == batch:
            self._close()  # every answer is in hand: free the cassette before the next batch

    def _local_server(self) -> Any:
        if self._server is None:
            from .local.runner import LocalServer

            self._server = self._server_stack.enter_context(LocalServer())
            self.say(f"audio-evals: started the local server at {self._server.base_url}")
        return self._server

    def say(self, line: str) -> None:
        """Write a line to the terminal, also while a test's output is captured."""
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        capman = self.config.pluginmanager.get_plugin("capturemanager")
        if reporter is None:
            return
        with capman.global_and_fixture_disabled() if capman else contextlib.nullcontext():
            reporter.ensure_newline()
            reporter.write_line(line)

    def _open(self, batch: tuple[str, str]) -> None:
        if self._open_batch == batch:
            return
        self._close()
        path = self._cassette_file(*batch)
        self._cassette = self._cassette_stack.enter_context(
            cas.open_cassette(path, self.record_mode)
        )
        self._open_batch = batch

    def _close(self, *, abandon: bool = False) -> None:
        if self._open_batch is None:
            return
        batch, cassette = self._open_batch, self._cassette
        info = self.batches.get(batch)
        shares, self._shares = self._shares, []
        for share in shares:  # results not yet asked for are kept; plays count for hygiene
            share.close(kill=abandon)
            for r in share.refs:
                self._share_of.pop(r, None)
            delivered, share.results = share.results, {}
            self._cache.update(delivered)
            for r in delivered:
                self._pending.get(batch, {}).pop(r, None)
            if share.error is not None:
                self._plays_incomplete = True
            elif cassette is not None:
                cassette.merge_plays(share.played)
        if (
            cassette is not None
            and info is not None
            and not self.is_worker
            and self._batch_complete.get(batch)
        ):
            if self._plays_incomplete:
                info.unused_interactions = None
                info.unused_unknown = "a replay process failed, so its plays are unknown"
            elif not self._pending.get(batch):
                unused = (
                    cassette.unused_indices()
                    if self.record_mode in ("none", "once", "new_episodes")
                    else []
                )
                info.unused_interactions = len(unused)
                if unused and self.config.getoption("prune_cassettes"):
                    cassette.drop_unused_requests = True
        self._open_batch, self._cassette = None, None
        self._plays_incomplete = False
        self._cassette_stack.close()

    # ---- results -----------------------------------------------------------------------
    def miss_message(self, result: CaseResult) -> str:
        """The message for a replayed request that has no recorded interaction."""
        suite = self.suites.get(result.suite)
        variant = suite.variant(result.variant) if suite else None
        path = _rel(self._cassette_file(result.suite, result.variant), self.rootpath)
        cmd = (
            self.record_command(variant, result.case_id)
            if variant
            else "pytest evals --record-mode=new_episodes"
        )
        return (
            f"cassette miss: {path} has no interaction for suite {result.suite}, variant {result.variant}, "
            f"case {result.case_id} (its audio, prompt, model, schema or parameters changed, or it was never "
            f"recorded). Re-record it with: {cmd}"
        )

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Collect results sent by xdist workers; forget the results of finished items."""
        if report.when == "teardown":
            self._item_results.pop(report.nodeid, None)
        if not self.is_controller or report.when != "call":
            return
        for name, value in report.user_properties:
            if name == RESULT_PROPERTY:  # sent by an xdist worker
                self.results.append(CaseResult.from_json(value))

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """Merge what an xdist worker knew of suites, batches and skips."""
        output = getattr(node, "workeroutput", {}) or {}
        payload = output.get("audio_evals")
        if not payload:
            return
        data = json.loads(payload)
        for raw in data["batches"]:
            key = (raw["suite"], raw["variant"])
            mine = self.batches.get(key)
            if mine is None:
                self.batches[key] = BatchInfo(**raw)
            else:
                mine.selected = max(mine.selected, raw["selected"])
                mine.collected = max(mine.collected, raw["collected"])
                mine.deselected_on_purpose = (
                    mine.deselected_on_purpose or raw["deselected_on_purpose"]
                )
        for skip in data["skips"]:
            if skip not in self.skips:
                self.skips.append(skip)
        self._worker_suites = {**getattr(self, "_worker_suites", {}), **data["suites"]}

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        """Close cassettes and the server; on the controller, write reports and judge the gates."""
        try:
            self._close(abandon=True)
        finally:
            self._server_stack.close()
        if self.is_worker:
            self.config.workeroutput["audio_evals"] = json.dumps(  # type: ignore[attr-defined]
                {
                    "batches": [vars(b) for b in self.batches.values()],
                    "skips": self.skips,
                    "suites": {name: suite_info(s) for name, s in self.suites.items()},
                }
            )
            return
        if not self.batches or self.config.option.collectonly:
            return
        from .finish import finish_session

        self.outcome = finish_session(self, session)

    def pytest_terminal_summary(
        self, terminalreporter: Any, exitstatus: int, config: pytest.Config
    ) -> None:
        """Print the per-field tables, cassette hygiene and the gate verdicts."""
        if self.outcome is not None:
            self.outcome.write_terminal(terminalreporter)

    def suite_infos(self) -> dict[str, dict[str, Any]]:
        """What the report needs of each suite (from this process or the xdist workers)."""
        infos = {name: suite_info(s) for name, s in self.suites.items()}
        return {**getattr(self, "_worker_suites", {}), **infos}


def suite_info(suite: Suite) -> dict[str, Any]:
    """A JSON-able description of a suite for reports and gates."""
    return {
        "name": suite.name,
        "source": str(suite.source) if suite.source else "",
        "variants": [v.name for v in suite.variants],
        "models": {v.name: list(v.models) for v in suite.variants},
        "gates": dict(suite.gates),
        "pricing": dict(suite.pricing),
        "cluster_by": suite.cluster_by,
        "n_cases": len(suite.dataset),
        "has_transcripts": suite.dataset.has_transcripts,
        "field_types": {
            path: str(kind) for path, kind in categorical_fields(suite.response_model).items()
        },
    }


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)
