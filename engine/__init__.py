"""swarm's headless engine: models, agents, rounds, tasks, sandbox, store, training, evaluation.

Nothing in this package imports a UI toolkit; the console and the CLI talk to it through
`engine.api` and the event types in `engine.events`.
"""

__version__ = "0.1.0"
