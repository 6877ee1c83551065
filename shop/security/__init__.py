"""Cross-cutting protection: response headers, CSRF, throttling of guessable endpoints."""
