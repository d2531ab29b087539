"""Benchmark: syncing an SMM panel's catalogue (first sync and resync) at two sizes.

    .venv/bin/python bench/smm_sync.py [--sizes 5000 1000] [--rounds 3]

Prints the SQL queries of each sync (they must be the same at every size: the catalogue is
upserted with a constant number of statements) and its time, next to the bare HTTP fetch of the same catalogue.
"""

import argparse
import statistics
import time

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
            session.post(env.panel_url(code), data={"key": "k", "action": "services"}).json()  # warm the catalogue
            figures = {"bare": [], "first": [], "resync": []}
            for r in range(args.rounds):
                t0 = time.perf_counter()
                session.post(env.panel_url(code), data={"key": "k", "action": "services"}).json()
                figures["bare"].append(time.perf_counter() - t0)
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
            print(f"RESULT size {size}: bare HTTP fetch {med['bare']:.3f} s; first sync {med['first']:.3f} s; "
                  f"resync {med['resync']:.3f} s; ÷ bare fetch: first {med['first'] / med['bare']:.1f}, "
                  f"resync {med['resync'] / med['bare']:.1f} (target ≤ 3)")
        constant = all(len(v) == 1 for v in queries_by_kind.values())
        print(f"RESULT SQL queries per sync by kind: { {k: sorted(v) for k, v in queries_by_kind.items()} } -> "
              f"{'constant in N' if constant else 'NOT constant'}")
    return 0 if constant else 1


if __name__ == "__main__":
    raise SystemExit(main())
