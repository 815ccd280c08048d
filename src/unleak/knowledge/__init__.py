"""What rules ask about code: LibCST questions (`analysis`, `loops`, `sessions`), cheap stdlib-`ast` checks (`quickscan`), formatting helpers for edits (`layout`)."""
