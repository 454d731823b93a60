"""Local stand-ins for what StemBot talks to, shared by the tests and the benchmarks: Discord's
REST API and gateway (`discord_standin`, with `launcher` to point a bot process at it) and the
separation API (`provider_api`). Nothing here reaches the internet."""
