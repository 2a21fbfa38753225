"""Loading and checking a TARS project: YAML with positions, ${ENV} secrets, JSON Schema."""
