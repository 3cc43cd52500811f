"""``modelsync report``: one self-contained HTML page (inline SVG charts, no script, printable) of a
model's versions, aliases, per-version serving metrics, drift and device telemetry, built from the API's
answers. ``console/`` holds the same page live for the local stack's ``/console/`` (``console.mjs`` is a
line-by-line port of :mod:`.svg` and :mod:`.build`'s rendering; a test checks both give the same markup).
"""
