#!/usr/bin/env python
"""Django's command-line utility for the example shop."""

import os
import sys


def main() -> None:
    # Only a default: under opentelemetry-instrument the variable must already be exported,
    # because the Django instrumentor reads settings before this line runs.
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
