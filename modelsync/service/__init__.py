"""Plain domain code behind the Lambda handlers (``functions/<name>/app.py``).

Nothing here creates AWS clients on its own: handlers build clients once per execution environment and
pass them in. The services (``serving``, ``admin``, ``telemetry``, ``publish``, ``batch``) read no event
formats; ``http/`` is the Score function's HTTP adapter (API Gateway proxy events, request models, the
error table). That keeps each piece testable with moto or plain fakes, and lets the local stack run the
same code.
"""
