"""Developer tools run from the checkout (never installed with the bot)."""
