"""From Inspect logs to a leaderboard (tables, plots, HTML) and the CI gate."""
