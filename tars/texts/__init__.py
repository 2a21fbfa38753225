"""Text sessions: TARS by SMS, from n8n, and with `tars send`."""
