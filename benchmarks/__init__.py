"""Side-by-side benchmarks of Conclave against etcd, ZooKeeper and PySyncObj (issue 4).

Entry point: `python -m benchmarks run` (or `make bench`) starts fresh 3-member clusters of
every selected system on 127.0.0.1, drives them with one asyncio load generator, and writes
`benchmarks/results/<date>/results.{md,json}` and `chart.png`. `python -m benchmarks sim`
measures the deterministic simulator's own speed into the same folder. See README.md.

Nothing here is a test with a wall-clock threshold: these are measurements to read.
"""
