"""statecore's benchmarks: ``python -m bench`` runs them all and writes docs/performance.md.

Each module measures one question (how fast is dispatch, how big is a fleet, what does the
store cost, how late are timers) and returns ``Figure`` rows; ``__main__`` prints them and
renders the document, so the numbers in the docs are always the ones a run produced.
"""
