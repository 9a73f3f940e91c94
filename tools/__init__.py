"""Command-line tools and benchmarks (installed as ``pmr_tools``; ``pmr bench`` plugs in through
:mod:`.commands`; the others run as ``python -m tools.NAME`` from the repository root)."""
