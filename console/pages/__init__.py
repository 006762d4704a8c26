"""One module per page; each exposes ``routes`` (mounted by :func:`console.app.build_console`)."""
