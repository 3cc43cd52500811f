"""Plain domain code behind the Lambda handlers (``functions/<name>/app.py``).

Nothing here reads the event formats of Lambda or creates AWS clients on its own: handlers parse events,
build clients once per execution environment, and pass them in. That keeps each piece testable with moto
or plain fakes, and lets the local stack run the same code.
"""
