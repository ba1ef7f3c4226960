"""An example Django shop whose failures show up in Sentry and Jaeger with one trace id."""
