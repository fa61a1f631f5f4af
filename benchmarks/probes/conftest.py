"""The probes' doctests run with the suite (pyproject's testpaths); these probes are scripts that
do their work when imported (they read sys.argv and open a home at the top), so they are not
collected."""
collect_ignore = ["majority_from_store.py", "mixed_sets.py", "n_parallel.py", "n_parallel_dev.py",
                  "step_check.py", "step_critic.py", "swap_judge.py"]
