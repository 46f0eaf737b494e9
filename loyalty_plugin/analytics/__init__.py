"""Member analytics: fitted models with the scikit-learn shape (``fit`` returns the model,
learned attributes end in ``_``). Pure numpy, scipy, pandas and scikit-learn: no Flask, no
database, so jobs, the CLI and benchmarks share one implementation."""
