"""``penguin compare``: algorithms x seeds under one budget, run as separate worker processes.

- :mod:`~experiments.compare.grid`: the jobs (one per algorithm and seed), their run
  directories, and which finished runs are reused;
- :mod:`~experiments.compare.worker`: what one worker process does (train one job, record its
  result atomically);
- :mod:`~experiments.compare.backends`: a local pool of fresh processes, or Ray tasks;
- :mod:`~experiments.compare.report`: IQM and stratified-bootstrap intervals (``rliable``) ->
  ``compare.md`` and ``compare.json``;
- :mod:`~experiments.compare.plots`: ``curves.png``.
"""
