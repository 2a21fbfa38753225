"""`tars serve`: the HTTP/websocket server that answers Twilio."""
