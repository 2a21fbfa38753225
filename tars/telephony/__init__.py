"""The switchboard: placing calls, pressing keys, handing calls to fresh streams, TwiML, statuses, signatures."""
