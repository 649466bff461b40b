"""Fuzzing the HTTP API from its own description: schemathesis against /openapi.json.

    python -m bench.fuzz [--quick] [--cases N] [--seed N] [--live] [--output PATH]

Fetches `/openapi.json` from the app built in this process (`bridge.create_app`, called
through schemathesis' WSGI transport) or, with `--live`, from a gunicorn on a free port; it
covers the webhooks, the status API and the inbox API. Each operation gets positive (valid by the
schema) and negative (invalid) cases from schemathesis' hypothesis strategies, sent with and
without valid credentials (the sender secret, a reader token, the office's inbox token).

Checks on every case: `not_a_server_error` (no 5xx), and nothing stored by a rejected request
(the row counts of submissions, attachments, deliveries, events and the delivered deliveries
are the same before and after any answer >= 400). The store is SQLite with its own private
Redis and one worker (so that /readyz is ready); both offices are inbox offices, so nothing
is pushed and only requests change the store. Twenty traffic orders (the README's JSON
example) are stored first, and the status API's `reference` and the inbox's `delivery_id`
are drawn from them, so that positive cases find a case to read or acknowledge.
Results: bench/results/fuzz-<date>[-quick][-live].md and .json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hypothesis
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, Verbosity, given
from hypothesis import settings as hsettings
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from sqlalchemy import Engine, text

from bench.chaos.redis_nodes import RedisSetup
from bench.chaos.run import bridge_env, gunicorn_host
from bench.chaos.stores import RunStore
from bench.common import ROOT, machine
from bench.samples import EXAMPLES
from bridge import create_app
from domain.accounts.accounts import Actor, Role
from domain.accounts.api_tokens import create_token
from domain.settings import Settings
from harness.processes import Managed, Supervisor
from store.engine import Store
from store.models import format_reference

RESULTS = ROOT / "bench" / "results"
INBOX_OFFICE = "neu-anspach-ordnungsamt"
INBOX_TOKEN_ENV = "BRIDGE_INBOX_TOKEN_ORDNUNGSAMT"  # noqa: S105 - a variable name
INBOX_OFFICES = {INBOX_OFFICE: INBOX_TOKEN_ENV, "usingen-steueramt": "BRIDGE_INBOX_TOKEN_STEUERAMT"}
COUNTS = (
    "SELECT (SELECT count(*) FROM submissions), (SELECT count(*) FROM attachments), "
    "(SELECT count(*) FROM deliveries), (SELECT count(*) FROM events), "
    "(SELECT count(*) FROM deliveries WHERE status = 'delivered')"
)


@dataclass
class Tally:
    """What the fuzzing found."""

    cases: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    server_errors: list[dict[str, Any]] = field(default_factory=list)
    stored_by_rejected: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def fuzz_config(run_dir: Path) -> Path:
    """The shipped routing with both offices as inbox offices: nothing is pushed, so the
    worker that keeps /readyz ready never writes to the store while a case is checked."""
    text_ = (ROOT / "config" / "routing.toml").read_text(encoding="utf-8")
    for office, token_env in INBOX_OFFICES.items():
        start = text_.index(f"[offices.{office}]")
        end = text_.index("\n\n", start)
        block = text_[start:end]
        block = re.sub(r'channel = "[^"]+"', 'channel = "inbox"', block)
        block = re.sub(r"options = \{[^}]*\}", f'options = {{ token_env = "{token_env}" }}', block)
        text_ = text_[:start] + block + text_[end:]
    path = run_dir / "routing.toml"
    path.write_text(text_, encoding="utf-8")
    return path


SEEDED = 20  # traffic orders stored before fuzzing, so the status API and the inbox find cases


def seed_cases(post: Callable[[str, dict[str, Any], dict[str, str]], int], secret: str) -> None:
    """Store SEEDED traffic orders (the README's JSON example) through the webhook."""
    body = json.loads((EXAMPLES / "traffic-order.json").read_text(encoding="utf-8"))
    body.pop("process_id", None)
    for n in range(SEEDED):
        status = post(
            "/webhooks/formcycle/traffic-order",
            body,
            {"X-Bridge-Secret": secret, "Idempotency-Key": f"fuzz-seed-{n}"},
        )
        if status != 202:
            raise RuntimeError(f"seeding the store failed: {status}")


def steer(spec: dict[str, Any], engine: Engine) -> None:
    """Draw the status API's reference and the inbox's delivery id from the seeded cases, so
    that positive cases find something (negative cases still try anything)."""
    with engine.connect() as conn:
        refs = [
            format_reference(p, y, i)
            for i, p, y in conn.execute(
                text("SELECT id, reference_prefix, reference_year FROM submissions")
            )
        ]
        ids = [r[0] for r in conn.execute(text("SELECT id FROM deliveries"))]
    for path, ops in spec["paths"].items():
        for op in ops.values():
            for param in op.get("parameters", []):
                if param.get("in") != "path":
                    continue
                if param["name"] == "reference" and refs:
                    param["schema"] = {"type": "string", "enum": refs}
                elif param["name"] == "delivery_id" and ids and "/inbox/" in path:
                    param["schema"] = {"type": "string", "enum": ids}
                elif param["name"] == "office_id":
                    # Unknown offices answer 401 like wrong tokens: name the inbox office, so
                    # that positive cases reach the listing and the acknowledgement.
                    param["schema"] = {"type": "string", "enum": [INBOX_OFFICE]}


class Fuzzer:
    """Runs every operation's strategies and records what came back."""

    def __init__(self, env: dict[str, str], engine: Engine, seed: int, api_token: str) -> None:
        """Credentials from `env` and a viewer's API token, row counts from `engine`."""
        self.engine = engine
        self.seed = seed
        self.rng = random.Random(seed)
        self.tally = Tally()
        self.auth = {
            "webhooks": {"X-Bridge-Secret": env["BRIDGE_SECRET_FORMCYCLE"]},
            "submissions": {"Authorization": "Bearer " + api_token},
            "inbox": {"Authorization": "Bearer " + env[INBOX_TOKEN_ENV]},
        }

    def counts(self) -> tuple[int, ...]:
        """The row counts a rejected request must not change."""
        with self.engine.connect() as conn:
            return tuple(conn.execute(text(COUNTS)).one())

    def headers_for(self, path: str) -> dict[str, str]:
        """Valid credentials for three cases in four, so most reach validation."""
        if self.rng.random() < 0.25:
            return {}
        for part, headers in self.auth.items():
            if f"/{part}/" in path or path.endswith(f"/{part}"):
                return headers
        return {}

    def run(
        self, schema: Any, per_operation: int, call: Callable[[Any, dict[str, str]], Any]
    ) -> None:
        """Fuzz every operation of `schema`, positive and negative cases."""
        for result in schema.get_all_operations():
            op = result.ok()
            for mode in (
                schemathesis.GenerationMode.POSITIVE,
                schemathesis.GenerationMode.NEGATIVE,
            ):
                try:
                    self._operation(op, mode, per_operation, call)
                except Exception as exc:  # a strategy that cannot be built is reported, not fatal
                    self.tally.errors.append(
                        f"{op.label} {mode.value}: {type(exc).__name__}: {exc}"[:400]
                    )

    def _operation(
        self, op: Any, mode: Any, n: int, call: Callable[[Any, dict[str, str]], Any]
    ) -> None:
        @hypothesis.seed(self.seed)
        @hsettings(
            max_examples=n,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
            verbosity=Verbosity.quiet,
        )
        @given(case=op.as_strategy(generation_mode=mode))
        def one(case: Any) -> None:
            self.case(op.label, case, call)

        one()

    def case(self, label: str, case: Any, call: Callable[[Any, dict[str, str]], Any]) -> None:
        """Send one case and check it."""
        headers = self.headers_for(case.formatted_path)
        if headers and case.headers and self.rng.random() < 0.75:
            # A presented signature must verify: without dropping the generated ones, nearly
            # every webhook case would end at 401 and never reach the body parsers.
            case.headers = {
                k: v for k, v in case.headers.items() if not k.lower().startswith("webhook-")
            }
        before = self.counts()
        response = call(case, headers)
        status = response.status_code
        self.tally.cases[label] += 1
        self.tally.statuses[f"{label} {status}"] += 1
        try:
            case.validate_response(response, checks=[not_a_server_error])
        except FailureGroup:  # recorded with the request, and fuzzing goes on
            self.tally.server_errors.append(
                {
                    "operation": label,
                    "status": status,
                    "curl": case.as_curl_command(headers=headers)[:2000],
                    "body": _text(response)[:500],
                }
            )
        if status >= 400:
            after = self.counts()
            if after != before:
                self.tally.stored_by_rejected.append(
                    {
                        "operation": label,
                        "status": status,
                        "before": before,
                        "after": after,
                        "curl": case.as_curl_command(headers=headers)[:2000],
                    }
                )


def with_inputs(schema: Any) -> int:
    """How many operations take parameters or a body (the others have a single case)."""
    found = 0
    for result in schema.get_all_operations():
        op = result.ok()
        found += bool(op.definition.raw.get("parameters") or op.definition.raw.get("requestBody"))
    return max(1, found)


def _text(response: Any) -> str:
    value = getattr(response, "text", "")
    return value if isinstance(value, str) else str(value)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.fuzz", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="about 400 cases (CI)")
    parser.add_argument(
        "--cases", type=int, default=None, help="cases in all (default 12,000; quick 400)"
    )
    parser.add_argument("--seed", type=int, default=None, help="default: the current time")
    parser.add_argument(
        "--live", action="store_true", help="against a gunicorn instead of in process"
    )
    parser.add_argument("--output", default=None, help="results path without suffix")
    return parser.parse_args(argv)


def start_backend(sup: Supervisor, run_dir: Path) -> tuple[dict[str, str], Engine]:
    """A private Redis, a SQLite store and one worker; the bridge's environment and engine."""
    redis = RedisSetup.single(sup, run_dir, {})
    store = RunStore.create("sqlite", run_dir, "")
    env = bridge_env(store, redis.url, fuzz_config(run_dir), "formcycle-" + "x" * 32)
    for n, token_env in enumerate(INBOX_OFFICES.values()):
        env[token_env] = f"inbox-token-{n}-" + "y" * 32
    # A worker, as in production: /readyz is 503 without one (the documented answer).
    worker = sup.add(
        Managed(
            "worker",
            [sys.executable, "-m", "worker", "work"],
            env,
            run_dir / "worker.log",
            ROOT,
        )
    )
    worker.wait_ready()
    return env, store.engine()


def viewer_token(engine: Engine) -> str:
    """A viewer's API token in the store, made as `python -m bridge tokens create` makes it."""
    _, api_token = create_token(
        Store(engine),
        "fuzz",
        Role.VIEWER,
        expires_at=None,
        actor=Actor(name="bench", role=Role.ADMIN, via="cli"),
    )
    return api_token


def live_target(
    sup: Supervisor, env: dict[str, str], run_dir: Path, engine: Engine
) -> tuple[Any, Callable[[Any, dict[str, str]], Any]]:
    """Seed and fetch the schema from a gunicorn on a free port; the schema and its caller."""
    web = sup.add(gunicorn_host("web", env, run_dir / "web.log"))
    web.wait_ready(90)
    base = f"http://127.0.0.1:{web.port}"
    seed_cases(
        lambda path, body, headers: (
            requests.post(base + path, json=body, headers=headers, timeout=30).status_code
        ),
        env["BRIDGE_SECRET_FORMCYCLE"],
    )
    spec = requests.get(f"{base}/openapi.json", timeout=30).json()
    steer(spec, engine)
    schema = schemathesis.openapi.from_dict(spec)
    session = requests.Session()

    def call(case: Any, headers: dict[str, str]) -> Any:
        return case.call(base_url=base, session=session, headers=headers, timeout=30)

    return schema, call


def in_process_target(
    env: dict[str, str], engine: Engine
) -> tuple[Any, Callable[[Any, dict[str, str]], Any]]:
    """Seed and fetch the schema from the app built here (WSGI); the schema and its caller."""
    app = create_app(Settings.from_env(env))
    client = app.test_client()
    seed_cases(
        lambda path, body, headers: client.post(path, json=body, headers=headers).status_code,
        env["BRIDGE_SECRET_FORMCYCLE"],
    )
    spec = client.get("/openapi.json").get_json()
    steer(spec, engine)
    schema = schemathesis.openapi.from_dict(spec)
    schema.app = app

    def call(case: Any, headers: dict[str, str]) -> Any:
        return case.call(headers=headers)

    return schema, call


def fuzz_rounds(
    fuzzer: Fuzzer,
    schema: Any,
    call: Callable[[Any, dict[str, str]], Any],
    seed: int,
    total: int,
) -> None:
    """Fuzz in rounds with successive seeds until `total` cases (at most 20 rounds)."""
    # Operations without inputs (/healthz) have one case; rounds with further seeds go on
    # until the others have made up the total.
    rounds = 0
    while sum(fuzzer.tally.cases.values()) < total and rounds < 20:
        left = total - sum(fuzzer.tally.cases.values())
        fuzzer.seed = seed + rounds
        fuzzer.run(schema, max(1, left // (2 * with_inputs(schema))), call)
        rounds += 1


def result_record(
    argv: list[str] | None, args: argparse.Namespace, seed: int, tally: Tally, started: float
) -> dict[str, Any]:
    """Every figure of the run, as written to the .json file."""
    return {
        "command": "python -m bench.fuzz " + " ".join(argv if argv is not None else sys.argv[1:]),
        "seed": seed,
        "transport": "live gunicorn" if args.live else "in process (WSGI)",
        "cases": sum(tally.cases.values()),
        "cases_by_operation": dict(tally.cases),
        "statuses": dict(sorted(tally.statuses.items())),
        "server_errors": tally.server_errors,
        "stored_by_rejected": tally.stored_by_rejected,
        "strategy_errors": tally.errors,
        "seconds": round(time.monotonic() - started, 1),
        "machine": machine(seed=str(seed)),
    }


def write_results(args: argparse.Namespace, result: dict[str, Any], passed: bool) -> None:
    """Write the .json and .md files (to --output or bench/results/) and print the .md."""
    tag = ("-quick" if args.quick else "") + ("-live" if args.live else "")
    path = (
        Path(args.output) if args.output else RESULTS / f"fuzz-{dt.date.today().isoformat()}{tag}"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".json").write_text(
        json.dumps(result, indent=2, default=str), encoding="utf-8"
    )
    text_ = markdown(result, passed)
    path.with_suffix(".md").write_text(text_, encoding="utf-8")
    print(text_)


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, fuzz, write the results; 1 when a check failed."""
    args = parse_args(argv)
    seed = args.seed if args.seed is not None else int(time.time())
    total = args.cases or (400 if args.quick else 12_000)
    run_dir = Path(tempfile.mkdtemp(prefix="fuzz-"))
    sup = Supervisor()
    started = time.monotonic()
    try:
        env, engine = start_backend(sup, run_dir)
        fuzzer = Fuzzer(env, engine, seed, viewer_token(engine))
        if args.live:
            schema, call = live_target(sup, env, run_dir, engine)
        else:
            schema, call = in_process_target(env, engine)
        fuzz_rounds(fuzzer, schema, call, seed, total)
        engine.dispose()
    finally:
        sup.shutdown()
    result = result_record(argv, args, seed, fuzzer.tally, started)
    passed = not fuzzer.tally.server_errors and not fuzzer.tally.stored_by_rejected
    write_results(args, result, passed)
    if passed:
        shutil.rmtree(run_dir, ignore_errors=True)
    return 0 if passed else 1


def markdown(result: dict[str, Any], passed: bool) -> str:
    """The results file."""
    lines = [
        f"# Fuzzing ({'passed' if passed else 'FAILED'}): {result['transport']}",
        "",
        f"`{result['command']}` (seed {result['seed']}, {result['seconds']} s)",
        "",
        f"- cases: {result['cases']}",
        f"- server errors (5xx): {len(result['server_errors'])}",
        f"- rejected requests that stored something: {len(result['stored_by_rejected'])}",
        "",
        "| operation | cases | answers |",
        "|---|---|---|",
    ]
    for op, n in sorted(result["cases_by_operation"].items()):
        answers = ", ".join(
            f"{k.rsplit(' ', 1)[1]} × {v}"
            for k, v in result["statuses"].items()
            if k.rsplit(" ", 1)[0] == op
        )
        lines.append(f"| {op} | {n} | {answers} |")
    for title, key in (
        ("Server errors", "server_errors"),
        ("Stored by a rejected request", "stored_by_rejected"),
    ):
        if result[key]:
            lines += ["", f"{title}:", ""]
            lines += [
                f"- {e['operation']} -> {e['status']}: `{e['curl'][:600]}`"
                for e in result[key][:20]
            ]
    if result["strategy_errors"]:
        lines += [
            "",
            "Strategies that generated nothing (e.g. no negative case without inputs):",
            "",
        ]
        lines += [f"- {e}" for e in result["strategy_errors"]]
    lines += ["", "Machine: " + ", ".join(f"{k} {v}" for k, v in result["machine"].items()), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
