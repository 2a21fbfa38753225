"""One phone call: who is calling, what the model is told, the tool gate, the pipeline."""
