"""The browser review page (``GET /review``): one HTML page with plain JavaScript and CSS shipped in
``static/``, and its cookie sign-in (``/review/session``). The page uses only the JSON API."""
