"""Talks to devices: request planning and decoding (pure), protocol clients, pollers."""
