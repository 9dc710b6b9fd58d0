"""The benchmarks of `nasp-bench` (bin/bench.py): cell quality (`quality`),
its statistics (`stats`) and the child runs they start (`jobs`)."""
