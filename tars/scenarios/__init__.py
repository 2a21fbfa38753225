"""Scripted calls for `tars simulate` and `tars test`, run against the emulators and the server."""
