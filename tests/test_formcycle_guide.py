"""docs/formcycle.md as a form designer follows it: every request block runs as written (bash,
curl, var/local.env) against a real gunicorn, and its answer must show what the guide prints
under it: the status lines and the German text the citizen sees."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
import requests
from sqlalchemy import text

from bench.chaos.run import gunicorn_host
from bridge import create_app
from domain.settings import Settings
from schemas.element_names import name_table
from schemas.registry import SCHEMAS
from store.engine import make_engine
from tests.conftest import FORMCYCLE_SECRET, ROOT, base_environ
from tests.quick_start import report, run_block

GUIDE = ROOT / "docs" / "formcycle.md"
#: A request block and the answer printed under it (prose between them, no other block).
PAIR = re.compile(r"```sh\n(.*?)```\n(?:(?!```).)*?```text\n(.*?)```", re.S)
#: The status lines of each request block of the guide, in order: a block dropped from the
#: guide, or an answer changed, is noticed here as well as by the excerpts.
STATUSES = [[202], [422], [202], [409], [202], [200], [202]]
STATUS_LINE = re.compile(r"^HTTP/[\d.]+ (\d{3})\b", re.M)


@dataclass(frozen=True)
class Step:
    """One request of the guide and what its answer must show."""

    block: str
    excerpt: str

    def statuses(self) -> list[int]:
        """The status codes the excerpt prints."""
        return [int(code) for code in STATUS_LINE.findall(self.excerpt)]


@dataclass(frozen=True)
class Service:
    """The bridge under test and the checkout the guide's blocks run in."""

    url: str
    checkout: Path
    database_url: str


def guide() -> str:
    """The guide's Markdown."""
    return GUIDE.read_text(encoding="utf-8")


def steps(text: str) -> list[Step]:
    """Every ```sh block with the ```text block after it; a request block without its printed
    answer is an error."""
    pairs = [Step(block, excerpt) for block, excerpt in PAIR.findall(text)]
    blocks = re.findall(r"```sh\n", text)
    assert len(pairs) == len(blocks), "a request block of the guide has no answer under it"
    return pairs


def unpaired_excerpts(text: str) -> list[str]:
    """The ```text blocks that follow no request block (answers the demo cannot provoke)."""
    paired = {excerpt for _, excerpt in PAIR.findall(text)}
    return [e for e in re.findall(r"```text\n(.*?)```", text, flags=re.S) if e not in paired]


def visible(output: str) -> str:
    """What a reader sees of an answer: markup dropped (a block's end as a space), entities
    decoded, spaces collapsed."""
    inline = re.sub(r"</?(?:strong|em|b|i|span|a)\b[^>]*>", "", output)
    text = html.unescape(re.sub(r"<[^>]+>", " ", inline))
    return " ".join(text.split())


def assert_shows(excerpt: str, output: str, context: str) -> None:
    """Each line of the excerpt appears in the output's visible text, in order; `…` stands
    for a part that changes from run to run (a reference, a token, a date)."""
    text = visible(output)
    position = 0
    for line in filter(None, (" ".join(raw.split()) for raw in excerpt.splitlines())):
        pattern = ".+?".join(re.escape(part) for part in line.split("…"))
        found = re.compile(pattern).search(text, position)
        assert found is not None, f"not shown: {line!r}\n{context}"
        position = found.end()


@pytest.fixture
def service(environ: dict[str, str], tmp_path: Path) -> Iterator[Service]:
    """gunicorn with the shipped routing file, and a checkout whose var/local.env names its
    port and the Formcycle secret as scripts/run writes them (examples/ from this one)."""
    web = gunicorn_host("web", dict(environ), tmp_path / "web.log")
    url = f"http://127.0.0.1:{web.port}"
    web.env.update(PATH="/usr/bin:/bin", BRIDGE_PUBLIC_URL=url, BRIDGE_LOG_FORMAT="text")
    checkout = tmp_path / "checkout"
    (checkout / "var").mkdir(parents=True)
    (checkout / "var" / "local.env").write_text(
        f"export BRIDGE_PORT={web.port}\nexport BRIDGE_SECRET_FORMCYCLE={FORMCYCLE_SECRET}\n"
    )
    (checkout / "examples").symlink_to(ROOT / "examples")
    web.start()
    try:
        web.wait_ready()
        yield Service(url, checkout, environ["DATABASE_URL"])
    finally:
        web.stop()


def test_every_request_of_the_guide_answers_as_printed(service: Service) -> None:
    """The guide's requests, in order, against one service: accepted, the same process again,
    refused with the fields named, a conflict, a fee with its pay link, a file upload."""
    found = steps(guide())
    assert [step.statuses() for step in found] == STATUSES
    outputs: list[str] = []
    for step in found:
        done = run_block(step.block, service.checkout, service.checkout.parent)
        context = report(step.block, done)
        assert done.returncode == 0, context
        assert [int(c) for c in STATUS_LINE.findall(done.stdout)] == step.statuses(), context
        assert_shows(step.excerpt, done.stdout, context)
        outputs.append(done.stdout)

    # Sent again with the same process id: the same case, nothing new.
    first, again = (re.findall(r'id="reference">([^<]+)<', outputs[i]) for i in (0, 2))
    assert first == again != []
    assert "Idempotent-Replayed: true" in outputs[2]

    # The page Formcycle shows after a fee-bearing form links to the pay page, which offers
    # the button that starts the payment.
    [link] = re.findall(r'<a id="pay" href="([^"]+)"', outputs[4])
    link = html.unescape(link)
    assert link.startswith(f"{service.url}/pay/US-")
    pay_page = requests.get(link, headers={"Accept": "text/html"}, timeout=10)
    assert pay_page.status_code == 200
    assert "Jetzt bezahlen" in visible(pay_page.text)
    assert "35,00 €" in visible(pay_page.text)
    # The JSON answer of the same submission carries the same link.
    assert link in outputs[5]

    # Seven requests, three cases: the repeat, the 422 and the 409 stored nothing.
    engine = make_engine(service.database_url)
    try:
        with engine.connect() as conn:
            counted = conn.execute(text("SELECT service, count(*) FROM submissions GROUP BY 1"))
            assert {service: count for service, count in counted} == {
                "dog-registration": 1,
                "traffic-order": 2,
            }
    finally:
        engine.dispose()


def test_the_503_page_is_as_printed(redis_url: str, tmp_path: Path) -> None:
    """The page a citizen sees when the bridge cannot store (an unmigrated database): the
    guide's excerpt, with Retry-After."""
    [excerpt] = unpaired_excerpts(guide())
    broken = f"sqlite:///{tmp_path / 'not-migrated.db'}"
    app = create_app(Settings.from_env(base_environ(broken, redis_url)))
    try:
        response = app.test_client().post(
            "/webhooks/formcycle/dog-registration",
            data=(ROOT / "examples" / "formcycle" / "dog-registration.form").read_bytes(),
            content_type="application/x-www-form-urlencoded",
            headers={"X-Bridge-Secret": FORMCYCLE_SECRET, "Accept": "text/html"},
        )
    finally:
        app.extensions["bridge"].store.dispose()
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"
    status_line = "HTTP/1.1 503 SERVICE UNAVAILABLE\nRetry-After: 30\n"
    assert_shows(excerpt, status_line + response.get_data(as_text=True), excerpt)


def test_the_field_list_shown_is_the_example_sent() -> None:
    """The element names and values the guide lists are those of the example the requests
    send, so the list a designer copies is the one the tests exercise."""
    [listed] = re.findall(r"```properties\n(.*?)```", guide(), flags=re.S)
    shown = [tuple(line.split("=", 1)) for line in listed.splitlines() if line]
    sent = parse_qsl((ROOT / "examples" / "formcycle" / "dog-registration.form").read_text())
    assert shown == [tuple(pair) for pair in sent]


def test_the_guides_links_lead_to_pages_that_exist() -> None:
    """Every relative link of the guide (the field sheets, the contract) names a file of the
    checkout, so a designer following one does not land on nothing."""
    targets = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", guide())
    relative = [t for t in targets if not t.startswith(("http://", "https://"))]
    assert relative
    missing = [t for t in relative if not (GUIDE.parent / t).exists()]
    assert missing == []


@pytest.mark.parametrize(
    ("schema", "example"),
    [
        ("dog-registration@1", "dog-registration.form"),
        ("traffic-order@1", "traffic-order.form"),
        ("traffic-order@1", "traffic-order-construction.fields"),
    ],
)
def test_the_examples_send_only_default_element_names(schema: str, example: str) -> None:
    """Every name the guide's examples send is a default element name of the service's schema
    (or the process id): a misspelt optional name would be dropped without a word, so the 202
    alone would not notice it."""
    text = (ROOT / "examples" / "formcycle" / example).read_text(encoding="utf-8")
    if example.endswith(".form"):
        names = [name for name, _ in parse_qsl(text)]
    else:  # the multipart example: its fields, and the files the guide's block adds
        names = [line.split("=", 1)[0] for line in text.splitlines() if line]
        names += re.findall(r"-F '(\w+)=@", guide())
    known = name_table(SCHEMAS.get(schema).schema_class).paths
    assert [name for name in names if name not in known] == ["process_id"]
