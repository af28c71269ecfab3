"""HTTP plumbing shared by both APIs: the WSGI application and server, routing, media types,
the request log and request faults. Knows no API's rules."""
