"""StemBot: split songs into stems from Discord, paid for with member credits."""

__version__ = "0.1.0"
