"""What the scale-out topology's internal topics would carry, measured in one process.

    .venv/bin/python bench/topology_volume.py                  # first 300k events of `default`
    .venv/bin/python bench/topology_volume.py --limit 0        # all of it
    .venv/bin/python bench/topology_volume.py --events E.jsonl

docs/scale-out.md splits the linked pipeline into an account stage, an evidence
stage keyed by evidence value and a cluster stage. Before building it, this counts,
on the shipped single-process pipeline, every hand-off that would cross a stage
boundary there, so the design is sized on measurement rather than on hope:

- memberships: an (account, evidence key) the account newly shows, or still shows
  ``--refresh-s`` after the last record sent for it, and forgets (expiry, eviction):
  the evidence topic, keyed by the key (the graph observes far more often: it keeps
  each membership's last time, which can stay with the account stage);
- onsets: burst starts fed to campaign-window synchrony (keyed by time bin);
- items: content-provenance item keys learnt (keyed by item);
- behaviour: throttled behaviour-feature updates (keyed by account);
- links: link weights set when an account gains a shared key, and the stored links
  recomputed at each re-validation (the links topic, to the cluster stage);
- cluster records: cluster changes drained (the cluster stage's output).

With ``links, thinned``: the links a cluster stage would need if a weight travelled
only when it crosses a threshold or moves by ``--link-step`` (the "all" rows show the
total with every link set, and with the thinned links instead).

Each is reported per 100 input events and, with a compact msgpack record of each
kind, as a share of input bytes (the input measured as the events' JSON lines).
Instruments the stage's methods from outside (this script only); prints figures and
asserts nothing.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
from rich.console import Console
from rich.table import Table
from scenario_data import chunks, scenario_files

from distillguard.detectors.account_pipeline import AccountPipeline
from distillguard.detectors.linkage import LinkageConfig, LinkageStage, LinkedPipeline
from distillguard.settings import get_settings

console = Console()
KINDS = (
    "memberships",
    "forgets",
    "onsets",
    "items",
    "behaviour",
    "links",
    "links re-validated",
    "links, thinned",
    "cluster records",
)
_pack = msgspec.msgpack.Encoder().encode


def counting(
    counts: Counter[str],
    sizes: Counter[str],
    kind: str,
    fn: Callable[..., Any],
    record: Callable[..., Any],
) -> Callable[..., Any]:
    """``fn`` that also counts one ``kind`` record and its packed size per call."""

    def wrapped(*args: Any) -> Any:
        counts[kind] += 1
        sizes[kind] += len(_pack(record(*args)))
        return fn(*args)

    return wrapped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", default="default")
    parser.add_argument("--events", type=Path)
    parser.add_argument("--labels", type=Path)
    parser.add_argument(
        "--limit", type=int, default=300_000, help="replay only the first N events (0: all)"
    )
    parser.add_argument(
        "--link-step",
        type=float,
        default=0.05,
        help="the thinned links topic re-sends a pair's weight when it moves this much",
    )
    parser.add_argument(
        "--refresh-s",
        type=float,
        default=3600.0,
        help="re-send a membership the account still shows after this long (default 1 h)",
    )
    args = parser.parse_args()
    args.events, _ = scenario_files(args.scenario, args.events, args.labels)
    args.limit = args.limit or None

    detectors = get_settings().detectors
    account = AccountPipeline(detectors)
    config = LinkageConfig.model_validate(detectors.linkage.model_dump())
    stage = LinkageStage(config, clock=account.clock)

    counts: Counter[str] = Counter()
    sizes: Counter[str] = Counter()
    # wrapped before LinkedPipeline binds it
    stage.observe_features = counting(  # type: ignore[method-assign]
        counts,
        sizes,
        "behaviour",
        stage.observe_features,
        lambda aid, features, ts: (aid, list(features.values()), ts),
    )
    linked = LinkedPipeline(account, stage)
    g = stage._graph
    observe = g.observe
    sent: dict[tuple[str, str], float] = {}
    by_kind: Counter[str] = Counter()

    def observe_counted(h: Any, key: str, ts: float) -> bool:
        """Count a membership record when none was sent for (account, key), or the last
        one is older than ``--refresh-s`` (keeping the value side alive). A key the
        graph dropped as common is throttled the same way: no answer from the evidence
        stage is needed to stop repeating it."""
        counts["observations"] += 1
        last = sent.get((h.id, key))
        if last is None or ts - last >= args.refresh_s:
            sent[(h.id, key)] = ts
            counts["memberships"] += 1
            by_kind[key[0]] += 1
            sizes["memberships"] += len(_pack((h.id, key, ts)))
        return observe(h, key, ts)

    g.observe = observe_counted  # type: ignore[method-assign]
    forget = g.forget

    def forget_counted(h: Any, key: str) -> None:
        if key in h.keys:
            counts["forgets"] += 1
            sizes["forgets"] += len(_pack((h.id, key)))
            sent.pop((h.id, key), None)
        forget(h, key)

    g.forget = forget_counted  # type: ignore[method-assign]
    sync = stage._sync
    sync.onset = counting(  # type: ignore[method-assign]
        counts, sizes, "onsets", sync.onset, lambda aid, ts: (aid, ts)
    )
    prov = stage._provenance
    prov.learn_one = counting(  # type: ignore[method-assign]
        counts, sizes, "items", prov.learn_one, lambda aid, item, ts: (aid, item, ts)
    )
    stage._set_link = counting(  # type: ignore[method-assign]
        counts,
        sizes,
        "links",
        stage._set_link,
        lambda pair, w: (*pair, w),
    )

    link_step = args.link_step
    sent_links: dict[tuple[str, str], float] = {}

    def send_link(pair: tuple[str, str], w: float) -> None:
        """The thinned links topic: a weight travels when it moves by ``--link-step``
        or more since the last one sent for the pair, or crosses a threshold."""
        cfg = stage.config
        last = sent_links.get(pair)
        crossed = last is not None and any(
            (last >= t) != (w >= t) for t in (cfg.store_threshold, cfg.link_threshold)
        )
        if last is None and w < cfg.store_threshold:
            return
        if last is None or crossed or abs(w - last) >= link_step:
            counts["links, thinned"] += 1
            sizes["links, thinned"] += len(_pack((*pair, w)))
            if w < cfg.store_threshold:
                sent_links.pop(pair, None)
            else:
                sent_links[pair] = w

    set_link = stage._set_link

    def set_link_counted(pair: tuple[str, str], w: float) -> None:
        send_link(pair, w)
        set_link(pair, w)

    stage._set_link = set_link_counted  # type: ignore[method-assign,assignment]
    revalidate = stage._revalidate

    def revalidate_counted(now: float) -> None:
        """Re-validation recomputes every stored link in place; in the topology each
        recomputed weight would travel to the cluster stage again."""
        before = len(stage._links)
        counts["links re-validated"] += before
        sizes["links re-validated"] += before * (sizes["links"] // max(1, counts["links"]))
        revalidate(now)
        for pair in [p for p in sent_links if p not in stage._links]:
            send_link(pair, 0.0)
        for pair, w in stage._links.items():
            send_link(pair, w)

    stage._revalidate = revalidate_counted  # type: ignore[method-assign]

    n = in_bytes = 0
    started = time.process_time()
    for batch in chunks(args.events, args.limit):
        for event in batch:
            linked.process(event)
        n += len(batch)
        for cluster in stage.drain_clusters():
            counts["cluster records"] += 1
            sizes["cluster records"] += len(msgspec.json.encode(cluster))
    spent = time.process_time() - started
    with args.events.open("rb") as fh:
        for i, line in enumerate(fh):
            if args.limit is not None and i >= args.limit:
                break
            in_bytes += len(line)

    table = Table(title=f"internal hand-offs, {n:,} input events ({in_bytes / 1e6:.0f} MB JSON)")
    for col in ("hand-off", "records", "per 100 events", "bytes (msgpack)", "share of input bytes"):
        table.add_column(col, justify="right")
    for kind in KINDS:
        table.add_row(
            kind,
            f"{counts[kind]:,}",
            f"{100 * counts[kind] / max(1, n):.2f}",
            f"{sizes[kind]:,}",
            f"{sizes[kind] / max(1, in_bytes):.2%}",
        )
    shipped = [k for k in KINDS if k != "links, thinned"]
    total, records = sum(sizes[k] for k in shipped), sum(counts[k] for k in shipped)
    table.add_row(
        "all",
        f"{records:,}",
        f"{100 * records / max(1, n):.2f}",
        f"{total:,}",
        f"{total / max(1, in_bytes):.2%}",
    )
    thin = [k for k in shipped if not k.startswith("links")] + ["links, thinned"]
    total, records = sum(sizes[k] for k in thin), sum(counts[k] for k in thin)
    table.add_row(
        "all, links thinned",
        f"{records:,}",
        f"{100 * records / max(1, n):.2f}",
        f"{total:,}",
        f"{total / max(1, in_bytes):.2%}",
    )
    console.print(table)
    console.print(
        "membership records by evidence kind (key prefix): "
        + ", ".join(f"{k}: {v:,}" for k, v in by_kind.most_common())
    )
    console.print(
        f"graph observations (not records): {counts['observations']:,}"
        f" ({100 * counts['observations'] / max(1, n):.0f} per 100 events)"
    )
    console.print(f"{n / spent:,.0f} events/s of CPU with the counting (not a speed figure)")


if __name__ == "__main__":
    main()
