"""A small clinic intake application: the team's own extraction code that the demo evals gate."""
