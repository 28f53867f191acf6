"""The HTML report of `apsgen stats --html`: one self-contained page (inline SVG plots, inline
script, no external resource) with the statistics and a viewer for one problem's search tree."""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from apsgen.io.export import iter_trees, step_shards
from apsgen.paths import full_text, solution_paths, tree_parents
from apsgen.io.stats import HIST_BINS, DatasetStats, compute_stats
from apsgen.io.store import OutputStore
from apsgen.io.svgplot import bar_chart, histogram

MAX_TREES = 8  # trees embedded in the viewer; each carries its text, so the page stays small

_GOOD, _BAD, _GREY = "#59a14f", "#e15759", "#9d9d9d"


def tree_payload(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One tree as the viewer draws it: nodes with their parent (by id) and own text."""
    parents = tree_parents(rows)
    by_id = {r["node_id"]: r for r in rows}
    nodes = []
    for nid in sorted(parents):
        r = by_id[nid]
        parent = parents[nid]
        before = full_text(by_id[parent]) if parent is not None else ""
        text = full_text(r)
        nodes.append(
            {
                "id": nid,
                "parent": parent,
                # Only the text this node adds: the viewer rebuilds a prefix along the parent chain.
                "text": text[len(before):] if text.startswith(before) else text,
                "mc": r["mc_value"],
                "n_correct": r["n_correct"],
                "n_rollouts": r["n_rollouts"],
                "first_error": bool(r["is_first_error"]),
                "source": r["label_source"],
                "step_index": r["step_index"],
            }
        )
    first = rows[0]
    return {"problem_id": first["problem_id"], "question": first["question"], "gold": first["gold_answer"],
            "nodes": nodes}


def _trees(store: OutputStore, limit: int, problem_id: str | None) -> tuple[list[dict[str, Any]], list[float]]:
    """Up to `limit` trees for the viewer (or the one asked for), and every path's step count."""
    trees: list[dict[str, Any]] = []
    lengths: list[float] = []
    for _, path in step_shards(store):
        for tree in iter_trees(pq.read_table(path, filesystem=store.fs)):
            lengths.extend(len(p.segments) for p in solution_paths(tree))
            wanted = tree[0]["problem_id"] == problem_id if problem_id else len(trees) < limit
            if wanted:
                trees.append(tree_payload(tree))
    return trees, lengths


def _plots(stats: DatasetStats, path_lengths: list[float], problems: list[dict[str, Any]]) -> list[str]:
    edges = [f"{i / HIST_BINS:.1f}" for i in range(HIST_BINS)]
    plots = [
        bar_chart("MC value histogram (annotated steps)", edges, stats.mc_histogram,
                  colors=[_BAD if i < HIST_BINS // 2 else _GOOD for i in range(HIST_BINS)]),
        bar_chart(
            "Labels: positive / negative",
            ["MC>0 +", "MC>0 -", "MC>0.5 +", "MC>0.5 -"],
            [stats.positive_mc0, stats.negative_mc0, stats.positive_mc05, stats.negative_mc05],
            colors=[_GOOD, _BAD, _GOOD, _BAD],
        ),
    ]
    labels, counts = histogram(path_lengths, 12)
    plots.append(bar_chart("Steps per solution path", labels, counts))
    labels, counts = histogram([float(p["n_rollouts"]) for p in problems], 12)
    plots.append(bar_chart("Rollouts per problem", labels, counts, color="#f28e2b"))
    labels, counts = histogram([float(p["generated_tokens"]) for p in problems], 12)
    plots.append(bar_chart("Generated tokens per problem", labels, counts, color="#76b7b2"))
    outcomes = stats.verifier_outcomes
    plots.append(
        bar_chart("Verifier outcomes (all rollouts)", list(outcomes), list(outcomes.values()),
                  colors=[_GOOD if k == "correct" else _BAD if k == "wrong" else _GREY for k in outcomes])
    )
    reasons = {"searched": stats.searched, **{f"skipped: {k}": v for k, v in stats.skipped.items()},
               "failed": stats.failed, "excluded": stats.excluded}
    plots.append(bar_chart("Problems searched and skipped", list(reasons), list(reasons.values()), color="#b07aa1"))
    return plots


def render_report(output: str, *, stats: DatasetStats | None = None, problem_id: str | None = None) -> str:
    """The report page for the job output at `output`, as one HTML string."""
    stats = stats or compute_stats(output)
    store = OutputStore(output)
    problems = store.read_problems().to_pylist()
    trees, lengths = _trees(store, MAX_TREES, problem_id)
    plots = _plots(stats, lengths, problems)
    data = json.dumps(trees, ensure_ascii=True).replace("</", "<\\/")  # never closes the script tag
    summary = escape(stats.render())
    return _PAGE.format(
        title=escape(f"apsgen stats: {stats.job}"),
        job=escape(stats.job),
        summary=summary,
        plots="\n".join(f'<figure>{p}</figure>' for p in plots),
        data=data,
        script=_SCRIPT,
        style=_STYLE,
    )


def write_report(output: str, html_path: str, *, stats: DatasetStats | None = None,
                 problem_id: str | None = None) -> Path:
    path = Path(html_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(output, stats=stats, problem_id=problem_id), encoding="utf-8")
    return path


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; }
pre.summary { background: #f6f6f6; padding: 12px; overflow-x: auto; }
.plots { display: flex; flex-wrap: wrap; gap: 12px; }
figure { margin: 0; border: 1px solid #ddd; }
.plot-title { font-size: 13px; font-weight: 600; }
.tick { font-size: 10px; fill: #555; }
.grid { stroke: #eee; }
#viewer { display: flex; gap: 16px; align-items: flex-start; }
#tree-box { overflow: auto; max-width: 60%; max-height: 640px; border: 1px solid #ddd; }
#node-info { flex: 1; white-space: pre-wrap; font-family: ui-monospace, monospace; font-size: 12px; }
#node-info .prefix { color: #888; }
#node-info .step { background: #fff3c4; }
circle.node { cursor: pointer; stroke: #333; stroke-width: 1; }
circle.first-error { stroke: #b00; stroke-width: 3; }
line.edge { stroke: #aaa; }
"""

_SCRIPT = r"""
(function () {
  const trees = JSON.parse(document.getElementById('tree-data').textContent);
  const select = document.getElementById('tree-select');
  const box = document.getElementById('tree-box');
  const info = document.getElementById('node-info');
  const NS = 'http://www.w3.org/2000/svg';
  function color(mc) {
    if (mc === null) return '#bbbbbb';
    return 'hsl(' + Math.round(120 * mc) + ', 65%, 50%)';
  }
  function el(name, attrs) {
    const e = document.createElementNS(NS, name);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    return e;
  }
  function show(tree, byId, node) {
    const chain = [];
    for (let n = node; n; n = n.parent === null ? null : byId[n.parent]) chain.unshift(n);
    const prefix = chain.slice(0, -1).map(n => n.text).join('');
    const mc = node.mc === null ? 'none (every rollout excluded)' : node.mc.toFixed(3);
    info.innerHTML = '';
    const head = document.createElement('div');
    head.textContent = 'node ' + node.id + ' | step ' + node.step_index + ' | MC ' + mc + ' (' +
      node.n_correct + '/' + node.n_rollouts + ') | ' + node.source + (node.first_error ? ' | FIRST ERROR' : '');
    const p = document.createElement('span'); p.className = 'prefix'; p.textContent = prefix;
    const s = document.createElement('span'); s.className = 'step'; s.textContent = node.text;
    info.append(head, document.createElement('hr'), p, s);
  }
  function render(idx) {
    const tree = trees[idx];
    const byId = {}; const kids = {};
    tree.nodes.forEach(n => { byId[n.id] = n; kids[n.id] = []; });
    const roots = [];
    tree.nodes.forEach(n => { if (n.parent === null || !(n.parent in byId)) roots.push(n); else kids[n.parent].push(n); });
    const pos = {}; let row = 0;
    function place(n, depth) {  // leaves take one row each, a parent sits at its first child's row
      const ks = kids[n.id];
      if (!ks.length) { pos[n.id] = [depth, row++]; return; }
      ks.forEach(k => place(k, depth + 1));
      pos[n.id] = [depth, pos[ks[0].id][1]];
    }
    roots.forEach(r => place(r, 1));
    const dx = 70, dy = 20;
    const depth = Math.max(1, ...Object.values(pos).map(p => p[0]));
    const svg = el('svg', {id: 'tree-svg', width: (depth + 1) * dx + 40, height: (row + 1) * dy + 20});
    svg.appendChild(el('circle', {cx: 20, cy: 20, r: 6, fill: '#333'}));
    tree.nodes.forEach(n => {
      const [d, r] = pos[n.id];
      const [pd, pr] = n.parent !== null && pos[n.parent] ? pos[n.parent] : [0, 0];
      svg.appendChild(el('line', {class: 'edge', x1: 20 + pd * dx, y1: 20 + pr * dy, x2: 20 + d * dx, y2: 20 + r * dy}));
    });
    tree.nodes.forEach(n => {
      const [d, r] = pos[n.id];
      const c = el('circle', {class: 'node' + (n.first_error ? ' first-error' : ''), cx: 20 + d * dx, cy: 20 + r * dy,
                              r: 7, fill: color(n.mc), 'data-node': n.id});
      const t = el('title', {}); t.textContent = 'node ' + n.id + ' MC ' + (n.mc === null ? 'none' : n.mc.toFixed(3));
      c.appendChild(t);
      c.addEventListener('click', () => show(tree, byId, n));
      svg.appendChild(c);
      if (n.first_error) {
        const x = el('text', {x: 20 + d * dx + 9, y: 20 + r * dy + 4, fill: '#b00', 'font-size': 12});
        x.textContent = '\u2717'; svg.appendChild(x);
      }
    });
    box.innerHTML = '';
    box.appendChild(svg);
    box.setAttribute('data-rendered', '1');
    document.getElementById('tree-question').textContent = tree.question + '  (gold answer: ' + tree.gold + ')';
    const fe = tree.nodes.find(n => n.first_error) || tree.nodes[tree.nodes.length - 1];
    if (fe) show(tree, byId, fe);
  }
  if (!trees.length) { box.textContent = 'No annotated steps in this output.'; return; }
  trees.forEach((t, i) => {
    const o = document.createElement('option');
    o.value = i; o.textContent = t.problem_id + ' (' + t.nodes.length + ' states)';
    select.appendChild(o);
  });
  select.addEventListener('change', () => render(+select.value));
  render(0);
})();
"""

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>{style}</style>
</head>
<body>
<h1>apsgen dataset report: {job}</h1>
<pre class="summary">{summary}</pre>
<h2>Plots</h2>
<div class="plots">
{plots}
</div>
<h2>Search tree</h2>
<p>Problem <select id="tree-select"></select> <span id="tree-question"></span></p>
<p>Node colour: MC value (red 0 to green 1, grey: no MC); a red ring and &#x2717; mark a located first error.
Click a node to see its prefix (grey) and its step (highlighted).</p>
<div id="viewer"><div id="tree-box"></div><div id="node-info"></div></div>
<script type="application/json" id="tree-data">{data}</script>
<script>{script}</script>
</body>
</html>
"""
