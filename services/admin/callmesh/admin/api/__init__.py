"""admin api."""
