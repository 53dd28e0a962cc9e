"""The real service's JSON body limit, refused the way Express refuses it.

The user-service parses bodies with `express.json()` (src/app.ts) at its default limit,
'100kb' = 102,400 bytes. body-parser (raw-body) refuses a longer body before any route runs:
at once when `Content-Length` says so, else as soon as the bytes read pass the limit; it
reads the rest of the request off the socket, then Express's final handler answers HTTP 413
with an HTML page. Under `NODE_ENV=development` (the load-test environment) the page shows
the error's stack, file paths included; a client must not pass that page on as is.
"""

from __future__ import annotations

import html
import re

from starlette.requests import Request
from starlette.responses import Response

# bytes.parse('100kb') in body-parser: a kilobyte is 1024 bytes. A body of exactly this many
# bytes is accepted, one more is refused.
JSON_BODY_LIMIT = 100 * 1024

# The stack under NODE_ENV=development (body-parser 1.20 / raw-body 2.5, as in the service's
# node_modules); under production the page says only "Payload Too Large".
PAYLOAD_TOO_LARGE_STACK = """PayloadTooLargeError: request entity too large
    at readStream (/usr/src/app/node_modules/raw-body/index.js:156:17)
    at getRawBody (/usr/src/app/node_modules/raw-body/index.js:109:12)
    at read (/usr/src/app/node_modules/body-parser/lib/read.js:79:3)
    at jsonParser (/usr/src/app/node_modules/body-parser/lib/types/json.js:135:5)
    at Layer.handle [as handle_request] (/usr/src/app/node_modules/express/lib/router/layer.js:95:5)
    at trim_prefix (/usr/src/app/node_modules/express/lib/router/index.js:328:13)
    at /usr/src/app/node_modules/express/lib/router/index.js:286:9
    at Function.process_params (/usr/src/app/node_modules/express/lib/router/index.js:346:12)
    at next (/usr/src/app/node_modules/express/lib/router/index.js:280:10)
    at expressInit (/usr/src/app/node_modules/express/lib/middleware/init.js:40:5)"""

_DOUBLE_SPACE = re.compile(r"\x20{2}")


def express_error_page(message: str) -> str:
    """finalhandler's `createHtmlDocument`: the message escaped, newlines as `<br>`, runs of
    two spaces as ` &nbsp;`."""
    body = _DOUBLE_SPACE.sub(" &nbsp;", html.escape(message, quote=True).replace("\n", "<br>"))
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Error</title>\n"
        f"</head>\n<body>\n<pre>{body}</pre>\n</body>\n</html>\n"
    )


def payload_too_large() -> Response:
    """Express's 413 answer, with finalhandler's headers."""
    return Response(
        express_error_page(PAYLOAD_TOO_LARGE_STACK),
        status_code=413,
        media_type="text/html; charset=utf-8",
        headers={"Content-Security-Policy": "default-src 'none'", "X-Content-Type-Options": "nosniff"},
    )


async def read_limited_body(request: Request, limit: int = JSON_BODY_LIMIT) -> bytes | None:
    """The request's body, or None when it is longer than ``limit`` bytes (the caller answers
    `payload_too_large()`). Like body-parser, a refused body is still read to its end (and
    dropped), so the client gets the answer rather than a reset connection."""
    declared = request.headers.get("content-length")
    too_long = declared is not None and declared.isdigit() and int(declared) > limit
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            too_long = True
        if not too_long:
            chunks.append(chunk)
    if too_long:
        return None
    return b"".join(chunks)
