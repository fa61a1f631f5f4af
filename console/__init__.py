"""swarm's face: the ``swarm`` command line and the Textual console.

``console.cli`` is the entry point; it imports Textual only when the console itself opens, so
headless commands (``swarm run``, ``swarm sql``, ``swarm doctor``) start fast.
"""
