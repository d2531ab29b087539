"""Benchmark: syncing an SMM panel's catalogue (first sync and resync) at two sizes.

    .venv/bin/python bench/smm_sync.py [--sizes 5000 1000] [--rounds 3]

Prints the SQL queries of each sync (they must be the same at every size: the catalogue is
upserted with a constant number of statements) and its time, next to the bare HTTP fetch of the same catalogue.

The bare fetch is what any client must do to have the catalogue: one POST and the same JSON decode as
the adapter (`parse_float=Decimal`: rates are money). A first sync is of a provider just added, so its
call opens a new connection, and the simulator then starts a thread and a database connection of its
own (5-10 ms): it is compared with a bare fetch on a new connection too. A resync reuses the
provider's connection and is compared with a bare fetch on a kept-alive one. The ratio to the
kept-alive fetch is printed for the first sync as well.
"""

import argparse
import json
import statistics
import time
from decimal import Decimal

from smm_common import Environment, QueryCounter


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 1000])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    with Environment() as env:
        import requests
        from django.db import connection

        from smm.catalogue import sync_services
        from smm.models import SandboxPanel, SMMService
        from smm.providers import create_provider

        print(f"database {connection.vendor}; {args.rounds} rounds per size (median shown)")
        session = requests.Session()
        queries_by_kind = {}
        for i, size in enumerate(args.sizes):
            code = "smmkings"
            SandboxPanel.objects.update_or_create(code=code, defaults={"api_key": "k", "catalogue_size": size})
            form = {"key": "k", "action": "services"}
            session.post(env.panel_url(code), data=form).json()  # warm the catalogue and the connection
            figures = {"bare": [], "bare_new": [], "first": [], "resync": []}
            for r in range(args.rounds):
                for kind, client in (("bare", session), ("bare_new", requests.Session())):
                    t0 = time.perf_counter()
                    json.loads(client.post(env.panel_url(code), data=form).text, parse_float=Decimal)
                    figures[kind].append(time.perf_counter() - t0)
                provider = create_provider(owner=env.merchant, name=f"p{i}-{r}", display_name="p",
                                           api_url=env.panel_url(code), api_key="k", code=code)
                for kind in ("first", "resync"):
                    with QueryCounter() as counter:
                        t0 = time.perf_counter()
                        result = sync_services(provider)
                        figures[kind].append(time.perf_counter() - t0)
                    queries_by_kind.setdefault(kind, set()).add(counter.count)
                    assert result["active"] == size, result
                    assert result["created"] == (size if kind == "first" else 0), result
                    print(f"size {size} round {r + 1} {kind:>6}: {figures[kind][-1]:.3f} s, {counter.count} queries, "
                          f"{result}")
            assert SMMService.objects.filter(provider=provider).count() == size
            med = {k: statistics.median(v) for k, v in figures.items()}
            print(f"RESULT size {size}: bare HTTP fetch {med['bare']:.3f} s kept-alive, {med['bare_new']:.3f} s on a "
                  f"new connection; first sync {med['first']:.3f} s; resync {med['resync']:.3f} s; "
                  f"first ÷ bare fetch on a new connection {med['first'] / med['bare_new']:.2f} "
                  f"(÷ kept-alive {med['first'] / med['bare']:.2f}), "
                  f"resync ÷ kept-alive bare fetch {med['resync'] / med['bare']:.2f} (target ≤ 3)")
        constant = all(len(v) == 1 for v in queries_by_kind.values())
        print(f"RESULT SQL queries per sync by kind: { {k: sorted(v) for k, v in queries_by_kind.items()} } -> "
              f"{'constant in N' if constant else 'NOT constant'}")
    return 0 if constant else 1


if __name__ == "__main__":
    raise SystemExit(main())
