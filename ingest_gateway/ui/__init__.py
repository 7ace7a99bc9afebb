"""The analyst inbox, served by the gateway under /ui/: server-rendered pages (aiohttp-jinja2,
autoescaped), a little JavaScript of its own, sign-in with an analyst's API key for a session
cookie. Its routes are pages, not API: they stay out of the OpenAPI document."""
