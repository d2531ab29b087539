"""The non-HTTP transports of the traced call: SOAP, FTP, WebSocket, SMTP and S3 (HTTP is `integrations.http`)."""
