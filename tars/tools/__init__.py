"""Tools the model may call during a call: built-in ones and webhooks declared in tars.yaml."""
