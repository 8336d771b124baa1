"""The web dashboard at /ui, end to end in real headless Chromium against a real 3-node cluster.

The browser is Debian's `chromium` (`apt-get install chromium`; `.ci/run` installs it), driven
by Playwright's synchronous API with `executable_path`, so no browser is downloaded. Without a
browser the test is skipped, unless `REQUIRE_BROWSER_TESTS=1` (set by `.ci/run`) makes that
a failure. The page must load without console errors, show the leader, follow a SIGKILL of the
leader to a new leader (the old one shown as down) and show an open decision's votes and
tally, its conflict's resolution and the outcome. A screenshot is saved under the test's tmp
dir and copied to `test-artifacts/dashboard.png` at the repository root.
"""

import contextlib
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conclave.dashboard import static_text
from conclave.dashboard.series import WriteSeries, percentile
from conclave.runtime.local_cluster import LocalCluster, http_json

from .conftest import ClusterFactory

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 45_000  # generous: a loaded 2-core machine runs three nodes and a browser

TOKENS = {"ann": "ann-token-0001", "bob": "bob-token-0001", "cyd": "cyd-token-0001"}
ADMIN = "ops-token-0001"
AUTH_ARGS = (
    *(
        arg
        for principal, token in [*TOKENS.items(), ("ops", ADMIN)]
        for arg in ("--token", f"{token}={principal}")
    ),
    "--admin",
    "ops",
)
KIND = {
    "kind": "config",
    "policy": {"threshold": [2, 3]},
    "electorate": [{"principal": p} for p in TOKENS],
    "strategy": "priority",
}


def _chromium() -> str | None:
    found = shutil.which("chromium")
    if found is None and Path("/usr/bin/chromium").exists():
        found = "/usr/bin/chromium"
    return found


def _missing(reason: str) -> None:
    if os.environ.get("REQUIRE_BROWSER_TESTS") == "1":
        pytest.fail(f"{reason} (REQUIRE_BROWSER_TESTS=1)")
    pytest.skip(reason)


@pytest.fixture
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright  # noqa: PLC0415 - optional dev dependency
    except ImportError:
        _missing("playwright is not installed (pip install -e '.[dev]')")
    executable = _chromium()
    if executable is None:
        _missing("chromium is not installed (apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def _call(
    cluster: LocalCluster, node: int, method: str, path: str, body: object = None, *, who: str
) -> dict:
    token = ADMIN if who == "ops" else TOKENS[who]
    code, answer = http_json(
        method, cluster.url(node, path), body, timeout_seconds=15.0, token=token
    )
    assert code in {200, 201}, answer
    return answer


def _put_keys(cluster: LocalCluster, node: int, prefix: str, count: int) -> None:
    for i in range(count):
        code, answer = http_json(
            "PUT", cluster.url(node, f"/v1/kv/{prefix}/{i}"), {"value": str(i)}, 15.0
        )
        assert code == 200, answer


def _save_screenshot(page: Any, tmp_path: Path, name: str) -> Path:
    shot = tmp_path / name
    page.screenshot(path=str(shot), full_page=True)
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copyfile(shot, ARTIFACTS / name)
    return shot


def test_dashboard_follows_failover_and_shows_votes(
    make_cluster: ClusterFactory, browser: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect  # noqa: PLC0415 - optional dev dependency

    cluster = make_cluster(3, extra_args=AUTH_ARGS)
    cluster.start()
    leader = cluster.leader()
    here = next(m.id for m in cluster.members if m.id != leader)  # the page's node survives
    _put_keys(cluster, here, "warmup", 20)

    problems: list[str] = []
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    try:
        page.goto(cluster.url(here, "/ui"), wait_until="load")
        expect(page).to_have_title("Conclave dashboard")
        expect(page.get_by_test_id("cluster-id")).to_have_text(cluster.cluster_id, timeout=WAIT_MS)
        expect(page.get_by_test_id("leader")).to_have_text(f"node {leader}", timeout=WAIT_MS)
        expect(page.get_by_test_id(f"member-{leader}")).to_have_attribute(
            "data-role", "leader", timeout=WAIT_MS
        )
        expect(page.get_by_test_id("members-up")).to_have_text("3 / 3", timeout=WAIT_MS)
        expect(page.get_by_test_id("alerts")).not_to_have_text("loading…", timeout=WAIT_MS)

        # SIGKILL the leader: the page must name the new leader and show the old one as down.
        cluster.kill(leader)
        new_leader = cluster.leader(exclude=leader, timeout_seconds=60)
        expect(page.get_by_test_id("leader")).to_have_text(f"node {new_leader}", timeout=WAIT_MS)
        expect(page.get_by_test_id(f"member-{leader}")).to_have_attribute(
            "data-role", "down", timeout=WAIT_MS
        )
        expect(page.get_by_test_id(f"member-{leader}")).to_contain_text("down")
        expect(page.get_by_test_id("members-up")).to_have_text("2 / 3", timeout=WAIT_MS)
        _put_keys(cluster, here, "after-failover", 30)
        expect(page.get_by_test_id("latency-summary")).to_contain_text("worst p99", timeout=WAIT_MS)

        # Two conflicting proposals; the low-priority one loses when it is decided.
        _call(cluster, here, "POST", "/v1/kinds", KIND, who="ops")
        change = {"kind": "config", "deadline_seconds": 600}
        low = _call(
            cluster,
            here,
            "POST",
            "/v1/proposals",
            {**change, "changes": {"svc/timeout": "30"}, "priority": 1},
            who="ann",
        )["id"]
        high = _call(
            cluster,
            here,
            "POST",
            "/v1/proposals",
            {**change, "changes": {"svc/timeout": "45"}, "priority": 5},
            who="bob",
        )["id"]
        for who in ("bob", "cyd"):
            _call(
                cluster, here, "POST", f"/v1/proposals/{low}/votes", {"choice": "approve"}, who=who
            )
        votes = {"ann": ("approve", "load test passed"), "cyd": ("reject", "too long for mobile")}
        for who, (choice, why) in votes.items():
            body = {"choice": choice, "justification": why}
            _call(cluster, here, "POST", f"/v1/proposals/{high}/votes", body, who=who)

        card = page.get_by_test_id(f"decision-{high}")
        expect(card).to_be_visible(timeout=WAIT_MS)
        for who, (choice, why) in votes.items():
            row = page.get_by_test_id(f"vote-{high}-{who}")
            expect(row).to_contain_text(choice, timeout=WAIT_MS)
            expect(row).to_contain_text(why)
        expect(card.get_by_test_id("tally")).to_contain_text("approve 1 of 2 needed")
        expect(card.get_by_test_id("tally")).to_contain_text("reject 1")
        expect(page.get_by_test_id(f"outcome-{low}")).to_contain_text("rejected", timeout=WAIT_MS)
        expect(page.get_by_test_id(f"conflict-resource:{low}+{high}")).to_contain_text(
            "priority", timeout=WAIT_MS
        )
        # The members table follows the log: the leader's row reaches the proposal's index.
        index = int(high.removeprefix("p"))
        page.wait_for_function(
            "([id, index]) => Number(document.querySelector(`[data-testid=member-${id}]`)"
            "?.dataset.commitIndex) >= index",
            arg=[new_leader, index],
            timeout=WAIT_MS,
        )
        _save_screenshot(page, tmp_path, "dashboard.png")

        # The deciding vote: the proposal leaves the in-flight list and shows as executed.
        approve = {"choice": "approve"}
        _call(cluster, here, "POST", f"/v1/proposals/{high}/votes", approve, who="bob")
        expect(page.get_by_test_id(f"outcome-{high}")).to_contain_text("executed", timeout=WAIT_MS)
        expect(card).to_have_count(0)
        assert problems == [], problems
    except BaseException:
        with contextlib.suppress(Exception):  # never hide the failure itself
            _save_screenshot(page, tmp_path, "dashboard-failure.png")
        raise
    finally:
        context.close()


def test_dashboard_endpoints_answer_for_a_down_member(make_cluster: ClusterFactory) -> None:
    cluster = make_cluster(3)
    cluster.start()
    leader = cluster.leader()
    here = next(m.id for m in cluster.members if m.id != leader)
    code, page = _get_text(cluster.url(here, "/ui"))
    assert code == 200
    assert '<script type="module" src="/ui/app.js">' in page
    cluster.kill(leader)
    code, body = http_json("GET", cluster.url(here, "/ui/api/cluster"), timeout_seconds=10.0)
    assert code == 200
    down = {m["id"]: m for m in body["members"]}[leader]
    assert down["up"] is False
    assert down["error"]
    code, body = http_json("GET", cluster.url(here, f"/ui/api/series?node={leader}"), None, 10.0)
    assert (code, body["available"]) == (200, False)
    code, body = http_json("GET", cluster.url(here, "/ui/api/alerts"), timeout_seconds=10.0)
    assert code == 200
    assert isinstance(body["available"], bool)
    code, body = http_json("GET", cluster.url(here, "/ui/api/decisions"), timeout_seconds=10.0)
    assert code == 200
    assert body["open"] == []
    for path in ("/ui/app.py", "/ui/%2e%2e/__init__.py", "/ui/static/app.js"):  # fixed paths only
        assert http_json("GET", cluster.url(here, path), timeout_seconds=10.0)[0] == 404


def _get_text(url: str) -> tuple[int, str]:
    import urllib.request  # noqa: PLC0415

    with urllib.request.urlopen(url, timeout=10.0) as response:  # noqa: S310 - a local test URL
        return response.status, response.read().decode()


def test_static_files_ship_as_package_data() -> None:
    page = static_text("index.html")
    assert "/ui/app.js" in page
    assert "/ui/style.css" in page
    assert ".badge-leader" in static_text("style.css")
    for name in ("index.html", "app.js", "style.css"):  # everything local: no CDN, no remote URL
        assert re.search(r"(https?:)?//[a-z]", static_text(name)) is None


def test_write_series_percentiles_and_rates() -> None:
    series = WriteSeries(capacity=2)
    series.sample(0, applied_index=10, elapsed_seconds=0.0)
    for ms in (1, 2, 3, 4, 100):
        series.record(ms / 1000, ok=True)
    series.record(0.5, ok=False)
    point = series.sample(1000, applied_index=30, elapsed_seconds=2.0)
    assert (point.writes, point.errors, point.applied_per_second) == (5, 1, 10.0)
    assert (point.p50_ms, point.p99_ms, point.max_ms) == (3.0, 100.0, 100.0)
    empty = series.sample(2000, applied_index=30, elapsed_seconds=1.0)
    assert (empty.writes, empty.p50_ms, empty.applied_per_second) == (0, None, 0.0)
    series.sample(3000, applied_index=31, elapsed_seconds=1.0)
    assert [p["t"] for p in series.to_json()] == [2000, 3000]
    assert percentile([], 0.5) is None
    assert percentile([7.0], 0.99) == 7.0
