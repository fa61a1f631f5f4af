"""A DataTable that shows a column at its measured width as soon as the width is measured."""

from __future__ import annotations

from textual import events
from textual.widgets import DataTable


class Table(DataTable):  # type: ignore[type-arg]
    """Textual's DataTable measures new rows on an idle message, and caches each line it renders
    under a key that the measurement does not change: a line drawn between ``add_row`` and that
    idle message (a refresh landing on a busy machine) stays drawn with every column cut to its
    header's width ("2 ca" for "2 carries") until something else redraws the table
    (Textualize/textual#4470, open). This table drops its line caches and redraws when a
    measurement widened a column."""

    async def _on_idle(self, event: events.Idle) -> None:
        before = [c.content_width for c in self.columns.values()]
        await super()._on_idle(event)
        if [c.content_width for c in self.columns.values()] != before:
            self._clear_caches()
            self.refresh()
