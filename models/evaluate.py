"""Offline evaluation: per-scenario Recall@K, HR@K and NDCG@K on the validation split.

For every validation request with at least one click, the model's user vector searches the
scenario's item pool through a faiss index (flat by default) for the top 100; the clicked
items are the targets. Results over several seeds are reported as mean and standard error,
in ``offline.json`` and a paper-style ``offline.md``.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from core import fileio
from models.data import Dataset
from models.index import IndexSpec, ItemIndex, compare_indexes
from models.ranking_metrics import ranking_metrics, summarise
from models.recaller import Recaller
from models.train import user_features, validation_targets

KS = (5, 10, 20, 50, 100)  # 5 and 10 for small catalogues (an OBD campaign has 34-80 items)
METRICS = tuple(f"{m}@{k}" for k in KS for m in ("recall", "hr", "ndcg"))


def evaluate(recaller: Recaller, data: Dataset, spec: IndexSpec | None = None) -> dict[str, dict]:
    """{scenario: {metric: value}} over every validation request of each scenario."""
    rows, targets = validation_targets(data, data.valid)
    scen = data.requests.scenario[rows]
    out = {}
    for s, name in enumerate(data.scenario_names):
        idx = np.flatnonzero(scen == s)
        if idx.size == 0:
            continue
        pool, vecs = recaller.item_vectors(s)
        index = ItemIndex(pool, vecs, spec)
        queries = recaller.user_vectors(user_features(data.requests, rows[idx]))
        _, ranked = index.search(queries, max(KS))
        res = summarise(ranking_metrics(ranked, [targets[i] for i in idx], ks=KS))
        out[name] = res | {"requests": int(idx.size), "pool": int(pool.size)}
    return out


def index_report(recaller: Recaller, data: Dataset, k: int = 50, max_queries: int = 2000):
    """HNSW and IVF against flat search for each scenario's index of one model."""
    rows, _ = validation_targets(data, data.valid)
    scen = data.requests.scenario[rows]
    report = {}
    for s, name in enumerate(data.scenario_names):
        idx = np.flatnonzero(scen == s)[:max_queries]
        if idx.size == 0:
            continue
        pool, vecs = recaller.item_vectors(s)
        queries = recaller.user_vectors(user_features(data.requests, rows[idx]))
        specs = (IndexSpec("flat"), IndexSpec("hnsw"), IndexSpec("ivf"))
        report[name] = [
            {
                "kind": r.kind,
                "recall_vs_flat": round(r.recall_vs_flat, 4),
                "search_ms_per_query": round(1000 * r.search_seconds / idx.size, 4),
                "flat_ms_per_query": round(1000 * r.flat_search_seconds / idx.size, 4),
            }
            for r in compare_indexes(pool, vecs, queries, k=k, specs=specs)
        ]
    return report


def aggregate(per_seed: Sequence[dict[str, dict]]) -> dict[str, dict]:
    """Mean and standard error over seeds: {scenario: {metric: mean, metric_se: se}}."""
    out: dict[str, dict] = {}
    for scenario in per_seed[0]:
        first = per_seed[0][scenario]
        entry: dict[str, float] = {"requests": first["requests"], "pool": first.get("pool")}
        for m in METRICS:
            vals = np.array([r[scenario][m] for r in per_seed])
            se = float(vals.std(ddof=1) / math.sqrt(vals.size)) if vals.size > 1 else None
            entry[m] = float(vals.mean())
            entry[f"{m}_se"] = se
        out[scenario] = entry
    return out


def _cell(entry: dict, metric: str) -> str:
    se = entry.get(f"{metric}_se")
    return f"{entry[metric]:.4f}" + (f" ± {se:.4f}" if se is not None else "")


def markdown(result: dict, traffic: dict[str, float], k: int = 50) -> str:
    """Paper-style table: models x scenarios, Recall@k and NDCG@k (mean ± s.e. over seeds)."""
    scenarios = list(traffic)
    label = {s: f"{s} ({traffic[s]:.0%}{', low' if traffic[s] <= 0.05 else ''})" for s in scenarios}
    lines = [
        f"# Offline evaluation on the validation split (seeds: {result['seeds']})",
        "",
        f"Recall@{k} / NDCG@{k} per scenario (share of traffic); mean ± standard error over "
        "seeds. Best learned model per column in bold.",
        "",
    ]
    models = result["models"]
    for metric in (f"recall@{k}", f"ndcg@{k}"):
        best = {
            s: max((m for m in models if s in models[m]), key=lambda m: models[m][s][metric])
            for s in scenarios
        }
        lines += [
            f"## {metric}",
            "",
            "| model | " + " | ".join(label[s] for s in scenarios) + " |",
            "|---" * (len(scenarios) + 1) + "|",
        ]
        for m, per in models.items():
            cells = []
            for s in scenarios:
                c = _cell(per[s], metric) if s in per else "–"
                cells.append(f"**{c}**" if best[s] == m else c)
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
        lines.append("")
    if result.get("train_seconds"):
        lines += ["## Training time (seconds, mean over seeds)", ""]
        lines += [f"- {m}: {t:.1f}" for m, t in result["train_seconds"].items()]
        lines.append("")
    if result.get("index"):
        lines += [
            f"## faiss indexes of `{result['index']['model']}` vs flat "
            f"(recall@{result['index'].get('k', 50)} of the approximate search)",
            "",
            "| scenario | kind | recall vs flat | ms/query | flat ms/query |",
            "|---|---|---|---|---|",
        ]
        for s, rows in result["index"]["scenarios"].items():
            for r in rows:
                lines.append(
                    f"| {s} | {r['kind']} | {r['recall_vs_flat']:.4f} | "
                    f"{r['search_ms_per_query']:.4f} | {r['flat_ms_per_query']:.4f} |"
                )
        lines.append("")
    return "\n".join(lines)


def write_offline(
    out_dir: str | Path, result: dict, traffic: dict[str, float], k: int = 50
) -> Path:
    out = fileio.check_writable_dir(out_dir)
    result = {"created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), **result}
    fileio.write_json(out / "offline.json", result)
    fileio.write_text(out / "offline.md", markdown(result, traffic, k))
    return out
