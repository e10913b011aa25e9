"""Every work item leaves a record: ordered times, a real worker, a breakdown that adds up."""

from __future__ import annotations

import html
import json
import os
import pathlib
import re
import shutil
import socket
import subprocess

import dask
import dask.array as da
import pytest

import daskexec
from daskexec.testing.graphs import tree_sum, tree_sum_expected


def _check(stats: daskexec.ComputeStats, capabilities: frozenset[str]) -> None:
    items = stats.items
    assert len(items) == stats.work_items + stats.retries, (len(items), stats.summary())
    assert sorted({r.item for r in items}) == list(range(stats.work_items))
    for r in items:
        assert not r.lost, r
        times = [r.ready, r.serialized, r.submitted, r.started, r.ran, r.finished, r.received]
        assert times == sorted(times), r
        assert r.received <= r.decoded, r
        host, pid, thread = r.worker.split("/", 2)
        assert host == r.host and pid.isdigit() and thread, r
        if "separate-processes" in capabilities:
            assert int(pid) != os.getpid(), r
        if "shared-memory" in capabilities:
            assert int(pid) == os.getpid() and host == socket.gethostname(), r
        assert r.tasks >= 1 and r.attempt >= 1
    assert sum(r.tasks for r in items if r.attempt == 1) == stats.remote_tasks
    parts = stats.breakdown
    assert set(parts) == {"tasks", "serialization", "transfer", "engine latency", "scheduling"}
    assert all(v >= 0 for v in parts.values()), parts
    assert sum(parts.values()) == pytest.approx(stats.seconds, rel=0.1), (parts, stats.seconds)
    assert parts["tasks"] > 0, parts
    assert stats.worker_seconds >= sum(r.finished - r.ran for r in items) * 0.999


def test_every_work_item_has_a_record(
    scheduler: daskexec.ExecutorScheduler, daskexec_capabilities: frozenset[str]
) -> None:
    assert dask.compute(tree_sum(64), scheduler=scheduler) == (tree_sum_expected(64),)
    assert scheduler.last_stats is not None
    _check(scheduler.last_stats, daskexec_capabilities)
    x = da.ones((400, 400), chunks=(100, 100))
    assert (x + x.T).sum().compute(scheduler=scheduler) == 2 * 400 * 400
    _check(scheduler.last_stats, daskexec_capabilities)
    summary = scheduler.last_stats.summary()
    assert "tasks" in summary and "%" in summary, summary


# -- the drawn timeline ------------------------------------------------------------------

CHECK = """
<script>
window.__errors = [];
window.addEventListener("error", (e) => window.__errors.push(String(e.message)));
window.addEventListener("load", () => setTimeout(() => {
  let bars = -1;
  try {
    const doc = Bokeh.documents[0];
    const data = doc.get_model_by_name("items").data_source.data;
    const items = new Set();
    for (let i = 0; i < data.item.length; i++) items.add(data.compute[i] + ":" + data.item[i]);
    bars = items.size;
  } catch (e) { window.__errors.push(String(e)); }
  document.body.setAttribute("data-check", JSON.stringify({errors: window.__errors, bars}));
}, 1000));
</script>
"""


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no Chromium on this machine (Debian: apt install chromium)")


def test_the_timeline_draws_one_bar_per_work_item(
    scheduler: daskexec.ExecutorScheduler, tmp_path: pathlib.Path
) -> None:
    pytest.importorskip("bokeh", reason="drawing needs daskexec-core[diagnostics]")
    pytest.importorskip("matplotlib", reason="drawing needs daskexec-core[diagnostics]")
    from daskexec.diagnostics import Timeline

    with Timeline() as timeline:
        dask.compute(tree_sum(32), scheduler=scheduler)
    assert len(timeline.computes) == 1
    items = {r.item for r in timeline.computes[0].items}
    page, png = tmp_path / "timeline.html", tmp_path / "timeline.png"
    timeline.save_html(str(page))
    timeline.save_png(str(png))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = page.read_text()
    assert "<script src=" not in text, "the page must work offline (bokeh inlined)"
    assert "daskexec-summary" in text
    page.write_text(text.replace("</head>", CHECK + "</head>", 1))
    done = subprocess.run(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--virtual-time-budget=15000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    found = re.search(r'data-check="([^"]*)"', done.stdout)
    assert found, (done.returncode, done.stdout[-2000:], done.stderr[-2000:])
    check = json.loads(html.unescape(found.group(1)))
    assert check["errors"] == [], check
    assert check["bars"] == len(items), (check, len(items))
