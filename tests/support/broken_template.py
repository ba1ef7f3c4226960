"""What Sentry gets for ``tests/djangoapp/templates/broken.html``: the frame of its failing
line 9 (``{% frobnicate %}``, an unknown tag), with five lines either side."""

from __future__ import annotations

from typing import Any


def broken_template_frame(path: str) -> dict[str, Any]:
    return {
        "filename": path,
        "abs_path": path,
        "lineno": 9,
        "function": "<template>",
        "in_app": True,
        "context_line": "  {% frobnicate order_id %}",
        "pre_context": [
            "  <title>Order {{ order_id }}</title>",
            "</head>",
            "<body>",
            "  <h1>Order {{ order_id }}</h1>",
            "  <p>Placed by {{ customer }}</p>",
        ],
        "post_context": [
            "  <ul>",
            "    <li>keyboard</li>",
            "    <li>mouse</li>",
            "    <li>screen</li>",
            "  </ul>",
        ],
    }
