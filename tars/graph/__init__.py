"""The project graph: compile, cross-checks, the task planner, and renderings."""
