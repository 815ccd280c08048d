"""What the user reads: findings and summaries (`report`), unified diffs (`diffing`), rule documentation (`explain`)."""
